package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/spf13/cobra"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Cadre serves a few endpoints of its own next to the etcd API, on the same
// client URLs (--dry-run, member list --progress). They are plain HTTP+JSON
// so that curl can use them too; this file is their client.

// Paths of Cadre's own HTTP endpoints.
const (
	pathDryRun    = "/cadre/v1/members/dry-run"
	pathProgress  = "/cadre/v1/members/progress"
	pathAutopilot = "/cadre/v1/autopilot"
)

// maxCadreResponse bounds what is read from one answer; a verdict or a
// progress report for any sane cluster is a few kB.
const maxCadreResponse = 4 << 20

// errNotCadre is returned when the server does not know a Cadre endpoint
// (HTTP 404): it is another etcd-compatible server, or an old Cadre.
var errNotCadre = errors.New("the endpoint does not serve a Cadre API")

// cadreHTTP calls one of Cadre's endpoints on the first --endpoints entry
// that answers. Any member answers: the server forwards to the leader.
type cadreHTTP struct {
	client *http.Client
	bases  []string // scheme://host[:port], one per endpoint
	// auth, with --user: the token is fetched through the gRPC Auth API on
	// first use and sent as "Authorization", as etcd's gateway expects.
	auth  *clientv3.AuthConfig
	spec  *clientv3.ConfigSpec
	token string
}

// newCadreHTTP builds the client from the same flags as the gRPC client:
// endpoints, TLS files and --insecure-skip-tls-verify.
func (a *app) newCadreHTTP(cmd *cobra.Command) (*cadreHTTP, error) {
	spec, err := a.configSpec(cmd)
	if err != nil {
		return nil, err
	}
	cfg, err := clientConfig(spec)
	if err != nil {
		return nil, exitWith(exitBadArgs, err)
	}
	scheme := "http"
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.TLS != nil {
		scheme = "https"
		tr.TLSClientConfig = cfg.TLS
	}
	h := &cadreHTTP{client: &http.Client{Transport: tr}, auth: spec.Auth, spec: spec}
	for _, ep := range spec.Endpoints {
		base, err := endpointBase(ep, scheme)
		if err != nil {
			return nil, exitWith(exitBadArgs, err)
		}
		h.bases = append(h.bases, base)
	}
	return h, nil
}

// endpointBase turns an --endpoints entry ("host:port" or a URL) into the
// base URL of its HTTP server.
func endpointBase(ep, scheme string) (string, error) {
	if s, rest, ok := strings.Cut(ep, "://"); ok {
		switch s {
		case "http", "https":
			return s + "://" + strings.TrimSuffix(rest, "/"), nil
		}
		return "", fmt.Errorf("endpoint %q: Cadre's HTTP API needs an http:// or https:// endpoint, not %s://", ep, s)
	}
	return scheme + "://" + ep, nil
}

// call sends one request and returns the body of a 200 answer. It moves on
// to the next endpoint only when one cannot be reached; an answer, even an
// error, is final.
func (h *cadreHTTP) call(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	var lastErr error
	for _, base := range h.bases {
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
		if err != nil {
			return nil, err
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if tok, err := h.authToken(ctx); err != nil {
			return nil, err
		} else if tok != "" {
			req.Header.Set("Authorization", tok)
		}
		resp, err := h.client.Do(req)
		if err != nil {
			lastErr = err
			if ctx.Err() != nil {
				break
			}
			continue
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, maxCadreResponse))
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("%s %s: reading the answer: %w", method, base+path, err)
		}
		switch resp.StatusCode {
		case http.StatusOK:
			return b, nil
		case http.StatusNotFound:
			return nil, errNotCadre
		}
		// Cadre answers errors as {"error": "..."}; anything else is shown
		// as it came.
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return nil, errors.New(e.Error)
		}
		return nil, fmt.Errorf("%s %s: %s: %s", method, base+path, resp.Status, strings.TrimSpace(string(b)))
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return nil, lastErr
}

// callCadre is call with the command timeout and cadrectl's exit codes: a
// server that is not Cadre is explained by what, the feature that needs it.
func (a *app) callCadre(cmd *cobra.Command, h *cadreHTTP, what, method, path string, body []byte) ([]byte, error) {
	ctx, cancel := a.commandContext(cmd)
	defer cancel()
	b, err := h.call(ctx, method, path, body)
	if errors.Is(err, errNotCadre) {
		return nil, exitf(exitFailure, "%s needs a Cadre server (the endpoint does not serve %s)", what, path)
	}
	if err != nil {
		return nil, requestFailed(err)
	}
	return b, nil
}

// authToken authenticates once (with --user/--password or a JWT from
// --auth-jwt-token) and returns the token for Cadre's HTTP endpoints.
func (h *cadreHTTP) authToken(ctx context.Context) (string, error) {
	if h.auth == nil || h.token != "" {
		return h.token, nil
	}
	if h.auth.Token != "" {
		h.token = h.auth.Token
		return h.token, nil
	}
	plain := *h.spec
	plain.Auth = nil
	cli, err := newClient(&plain)
	if err != nil {
		return "", err
	}
	defer cli.Close()
	resp, err := pb.NewAuthClient(cli.ActiveConnection()).Authenticate(ctx, &pb.AuthenticateRequest{Name: h.auth.Username, Password: h.auth.Password})
	if err != nil {
		return "", err
	}
	h.token = resp.Token
	return h.token, nil
}
