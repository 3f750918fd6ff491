// Package discovery turns bootstrap discovery settings into the initial
// cluster (name=peerURL,...) a new member would otherwise get from
// --initial-cluster: v3 discovery through a running etcd-API cluster
// (etcd's registry layout, so an etcd or Cadre cluster can serve it), or
// DNS SRV records. It runs before the member creates anything on disk.
package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cadrekv/cadre/internal/config"
	"github.com/cadrekv/cadre/internal/membership"
)

// ErrFull means the registry already holds its expected number of members
// and this member is not one of them.
var ErrFull = errors.New("discovery: cluster is full")

// registryPrefix is etcd's v3 discovery key layout:
// <prefix>/_config/size holds the expected size, <prefix>/members/<id hex>
// one registration per member, valued "name=peerURL[,name=peerURL]".
func registryPrefix(token string) string { return "/_etcd/registry/" + token }

// pollInterval paces the wait for the other members' registrations.
const pollInterval = 250 * time.Millisecond

// Registry runs v3 discovery: it registers this member under the token,
// waits until the expected number of members have registered, and returns
// the initial cluster made of the first registrations (by creation order).
// It waits until ctx ends.
func Registry(ctx context.Context, cfg *config.Config, lg *slog.Logger) (string, error) {
	d := &cfg.Discovery
	tlsCfg, err := clientTLS(d)
	if err != nil {
		return "", err
	}
	user, pass := d.User, d.Password
	if u, p, ok := strings.Cut(user, ":"); ok && pass == "" {
		user, pass = u, p
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:            d.Endpoints,
		DialTimeout:          d.DialTimeout,
		DialKeepAliveTime:    d.KeepAliveTime,
		DialKeepAliveTimeout: d.KeepAliveTimeout,
		TLS:                  tlsCfg,
		Username:             user,
		Password:             pass,
		Logger:               quietZap(),
	})
	if err != nil {
		return "", fmt.Errorf("discovery: cannot reach --discovery-endpoints %s: %w", strings.Join(d.Endpoints, ","), err)
	}
	defer cli.Close()

	prefix := registryPrefix(d.Token)
	self := membership.ComputeMemberID(config.URLStrings(cfg.InitialAdvertisePeerURLs), cfg.InitialClusterToken, nil)
	selfKey := prefix + "/members/" + membership.IDString(self)
	selfVal := selfEntry(cfg)

	size, err := registrySize(ctx, cli, d, prefix)
	if err != nil {
		return "", err
	}
	regs, err := registrations(ctx, cli, d, prefix)
	if err != nil {
		return "", err
	}
	if !within(regs, selfKey, size) && len(regs) >= size {
		return "", fullError(d, prefix, size, regs)
	}
	if !within(regs, selfKey, size) {
		rctx, cancel := context.WithTimeout(ctx, d.RequestTimeout)
		// Create only: a registration is never overwritten, so the order
		// (creation revision) every member sees is the same.
		_, err := cli.Txn(rctx).
			If(clientv3.Compare(clientv3.CreateRevision(selfKey), "=", 0)).
			Then(clientv3.OpPut(selfKey, selfVal)).Commit()
		cancel()
		if err != nil {
			return "", fmt.Errorf("discovery: registering %s under token %q: %w", cfg.Name, d.Token, err)
		}
		lg.Info("registered with the discovery service", "token", d.Token, "key", selfKey, "peer-urls", selfVal, "expected-size", size)
	}

	lastLog := time.Time{}
	for {
		regs, err = registrations(ctx, cli, d, prefix)
		if err != nil {
			return "", err
		}
		if len(regs) >= size {
			if !within(regs, selfKey, size) {
				return "", fullError(d, prefix, size, regs)
			}
			parts := make([]string, size)
			for i := range size {
				parts[i] = regs[i].val
			}
			text := strings.Join(parts, ",")
			lg.Info("discovery complete", "token", d.Token, "initial-cluster", text)
			return text, nil
		}
		if time.Since(lastLog) >= 5*time.Second {
			lg.Info("waiting for the other members to register", "token", d.Token, "registered", len(regs), "expected-size", size, "missing", size-len(regs))
			lastLog = time.Now()
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("discovery: stopped while waiting for %d more member(s) under token %q: %w", size-len(regs), d.Token, ctx.Err())
		case <-time.After(pollInterval):
		}
	}
}

type registration struct {
	key, val string
	created  int64
}

func registrySize(ctx context.Context, cli *clientv3.Client, d *config.Discovery, prefix string) (int, error) {
	rctx, cancel := context.WithTimeout(ctx, d.RequestTimeout)
	defer cancel()
	resp, err := cli.Get(rctx, prefix+"/_config/size")
	if err != nil {
		return 0, fmt.Errorf("discovery: reading the cluster size from %s: %w", strings.Join(d.Endpoints, ","), err)
	}
	if len(resp.Kvs) == 0 {
		return 0, fmt.Errorf("discovery: the size key %s/_config/size is not set on the discovery service; set it first, like: etcdctl --endpoints=%s put %s/_config/size 3",
			prefix, strings.Join(d.Endpoints, ","), prefix)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(resp.Kvs[0].Value)))
	if err != nil || n < 1 {
		return 0, fmt.Errorf("discovery: the size key %s/_config/size holds %q; it must be the number of initial members, like 3", prefix, resp.Kvs[0].Value)
	}
	return n, nil
}

func registrations(ctx context.Context, cli *clientv3.Client, d *config.Discovery, prefix string) ([]registration, error) {
	rctx, cancel := context.WithTimeout(ctx, d.RequestTimeout)
	defer cancel()
	resp, err := cli.Get(rctx, prefix+"/members/", clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("discovery: reading registrations from %s: %w", strings.Join(d.Endpoints, ","), err)
	}
	out := make([]registration, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		out = append(out, registration{key: string(kv.Key), val: string(kv.Value), created: kv.CreateRevision})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].created < out[j].created })
	return out, nil
}

// within reports whether key is among the first size registrations.
func within(regs []registration, key string, size int) bool {
	for i := 0; i < len(regs) && i < size; i++ {
		if regs[i].key == key {
			return true
		}
	}
	return false
}

func fullError(d *config.Discovery, prefix string, size int, regs []registration) error {
	names := make([]string, 0, size)
	for i := 0; i < size && i < len(regs); i++ {
		names = append(names, regs[i].val)
	}
	return fmt.Errorf("%w: %d of %d members are already registered under token %q (%s) and this member is not one of them; "+
		"to add it to the running cluster, run `member add` on that cluster and start this member with the settings it prints (no discovery flags); "+
		"to bootstrap a new cluster, use a new token or raise %s/_config/size before the members start",
		ErrFull, len(regs), size, d.Token, strings.Join(names, ","), prefix)
}

// selfEntry is this member's registration: name=peerURL for each
// advertised peer URL, the --initial-cluster form.
func selfEntry(cfg *config.Config) string {
	urls := config.URLStrings(cfg.InitialAdvertisePeerURLs)
	for i, u := range urls {
		urls[i] = cfg.Name + "=" + u
	}
	return strings.Join(urls, ",")
}
