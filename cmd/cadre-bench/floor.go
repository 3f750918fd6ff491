package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// The floor: what the machine itself costs a put, measured on it, so a
// latency row can be read against what no server could beat. A put from
// one client to a 3-member cluster needs at least one gRPC round trip
// (client -> leader), one loopback round trip (leader -> follower and
// back, in parallel with the leader's own fsync) and one fdatasync.

// floorIters is how many round trips each probe times.
const floorIters = 2000

// loopbackRTT times one-byte ping-pongs over a loopback TCP connection.
func loopbackRTT(iters int) (p50, p99 float64, err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, 0, err
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(c, c) // echo until the client closes
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	buf := []byte{1}
	lat := make([]time.Duration, 0, iters)
	for range iters {
		t0 := time.Now()
		if _, err := c.Write(buf); err != nil {
			return 0, 0, err
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			return 0, 0, err
		}
		lat = append(lat, time.Since(t0))
	}
	return pctMS(lat, 50), pctMS(lat, 99), nil
}

// grpcRTT times unary calls to a gRPC server whose handler does nothing
// (the standard health service) over loopback.
func grpcRTT(iters int) (p50, p99 float64, err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, 0, err
	}
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go func() { _ = srv.Serve(ln) }()
	defer srv.Stop()
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close()
	cli := healthpb.NewHealthClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := cli.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil { // connect first
		return 0, 0, err
	}
	lat := make([]time.Duration, 0, iters)
	for range iters {
		t0 := time.Now()
		if _, err := cli.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
			return 0, 0, err
		}
		lat = append(lat, time.Since(t0))
	}
	return pctMS(lat, 50), pctMS(lat, 99), nil
}

// measureFloor fills the machine's floor fields.
func (m *machine) measureFloor() error {
	var err error
	if m.LoopbackP50ms, m.LoopbackP99ms, err = loopbackRTT(floorIters); err != nil {
		return fmt.Errorf("loopback round trip: %w", err)
	}
	if m.GRPCP50ms, m.GRPCP99ms, err = grpcRTT(floorIters); err != nil {
		return fmt.Errorf("gRPC round trip: %w", err)
	}
	// The follower's fsync must finish before it answers, and the leader's
	// own runs meanwhile: one fsync and one peer round trip in a row.
	m.PutFloorMS = m.GRPCP50ms + m.LoopbackP50ms + m.FsyncP50ms
	return nil
}
