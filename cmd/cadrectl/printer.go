package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"
)

// Output formats accepted by --write-out, as in etcdctl.
const (
	formatSimple   = "simple"
	formatJSON     = "json"
	formatTable    = "table"
	formatFields   = "fields"
	formatProtobuf = "protobuf"
	// formatWide is accepted by member list only: its table with progress.
	formatWide = "wide"
)

// printer writes command results in the format chosen by --write-out. The
// shared helpers live here; each command file adds the printer method for
// its own responses, so adding a command does not touch this file.
//
// Every method returns an *exitError when the format is not supported for
// that response, exactly where etcdctl exits with code 4: after the request
// was made.
type printer struct {
	format    string
	hex       bool // --hex: byte strings and IDs in hex
	valueOnly bool // get --print-value-only
	// waiting: how long each unstarted member (hex ID) has waited, shown in
	// member list -w table when the server is Cadre.
	waiting map[string]string
	out     io.Writer
	errOut  io.Writer
}

func (a *app) newPrinter() (*printer, error) {
	switch a.global.writeOut {
	case formatSimple, formatJSON, formatTable, formatFields, formatProtobuf:
	default:
		return nil, exitf(exitBadFeature, "unsupported output format")
	}
	return &printer{format: a.global.writeOut, hex: a.global.hex, out: a.out, errOut: a.errOut}, nil
}

func (p *printer) unsupported() error {
	return exitf(exitBadFeature, "%s not supported as output format", p.format)
}

// message prints an RPC response in the formats that are a plain encoding of
// the message (json, protobuf); the rest are unsupported for it.
func (p *printer) message(m proto.Message) error {
	switch p.format {
	case formatJSON:
		p.json(m)
		return nil
	case formatProtobuf:
		return p.protobuf(m)
	}
	return p.unsupported()
}

// json prints v as one line of encoding/json output. Like etcdctl it uses
// encoding/json (not protojson), so keys and values are base64 and 64-bit
// numbers are JSON numbers.
func (p *printer) json(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// etcdctl reports the marshal error and still exits 0.
		fmt.Fprintln(p.errOut, err)
		return
	}
	fmt.Fprintln(p.out, string(b))
}

// protobuf prints the wire encoding of m, without framing.
func (p *printer) protobuf(m proto.Message) error {
	b, err := proto.Marshal(m)
	if err != nil {
		fmt.Fprintln(p.errOut, err)
		return nil
	}
	_, err = p.out.Write(b)
	return err
}

// table prints rows under header as a box-drawn table.
func (p *printer) table(header []string, rows [][]string) {
	renderTable(p.out, header, rows)
}

// simpleKV prints a key line (unless --print-value-only) and a value line.
func (p *printer) simpleKV(kv *mvccpb.KeyValue) {
	k, v := string(kv.GetKey()), string(kv.GetValue())
	if p.hex {
		k, v = escapedHex(kv.GetKey()), escapedHex(kv.GetValue())
	}
	if !p.valueOnly {
		fmt.Fprintln(p.out, k)
	}
	fmt.Fprintln(p.out, v)
}

// escapedHex writes every byte as \xNN, the form etcdctl --hex prints.
func escapedHex(b []byte) string {
	var sb strings.Builder
	sb.Grow(4 * len(b))
	for _, c := range b {
		fmt.Fprintf(&sb, `\x%02x`, c)
	}
	return sb.String()
}

// fieldsHeader prints a response header in the fields format. Revision is
// left out when zero: only KV responses carry one.
func (p *printer) fieldsHeader(h *pb.ResponseHeader) {
	if p.hex {
		fmt.Fprintf(p.out, "\"ClusterID\" : %x\n", h.GetClusterId())
		fmt.Fprintf(p.out, "\"MemberID\" : %x\n", h.GetMemberId())
	} else {
		fmt.Fprintf(p.out, "\"ClusterID\" : %d\n", h.GetClusterId())
		fmt.Fprintf(p.out, "\"MemberID\" : %d\n", h.GetMemberId())
	}
	if h.GetRevision() > 0 {
		fmt.Fprintf(p.out, "\"Revision\" : %d\n", h.GetRevision())
	}
	fmt.Fprintf(p.out, "\"RaftTerm\" : %d\n", h.GetRaftTerm())
}

// fieldsKV prints one key-value in the fields format, names prefixed by pfx.
func (p *printer) fieldsKV(pfx string, kv *mvccpb.KeyValue) {
	fmt.Fprintf(p.out, "\"%sKey\" : %q\n", pfx, string(kv.GetKey()))
	fmt.Fprintf(p.out, "\"%sCreateRevision\" : %d\n", pfx, kv.GetCreateRevision())
	fmt.Fprintf(p.out, "\"%sModRevision\" : %d\n", pfx, kv.GetModRevision())
	fmt.Fprintf(p.out, "\"%sVersion\" : %d\n", pfx, kv.GetVersion())
	fmt.Fprintf(p.out, "\"%sValue\" : %q\n", pfx, string(kv.GetValue()))
	if p.hex {
		fmt.Fprintf(p.out, "\"%sLease\" : %016x\n", pfx, kv.GetLease())
	} else {
		fmt.Fprintf(p.out, "\"%sLease\" : %d\n", pfx, kv.GetLease())
	}
}

// humanBytes renders a byte count in SI units the way etcdctl's tables do
// (go-humanize's Bytes): "9 B", "20 kB", "2.1 GB".
func humanBytes(n uint64) string {
	if n < 10 {
		return fmt.Sprintf("%d B", n)
	}
	units := [...]string{"B", "kB", "MB", "GB", "TB", "PB", "EB"}
	exp := math.Floor(math.Log(float64(n)) / math.Log(1000))
	val := math.Floor(float64(n)/math.Pow(1000, exp)*10+0.5) / 10
	if val < 10 {
		return fmt.Sprintf("%.1f %s", val, units[int(exp)])
	}
	return fmt.Sprintf("%.0f %s", val, units[int(exp)])
}
