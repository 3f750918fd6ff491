package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cadrekv/cadre/tests/framework"
)

// TestRangeStream: etcd 3.7's streamed Range through client/v3's
// GetStream (what Kubernetes 1.37 lists with) answers what Get answers:
// the same keys in order, count, more and revision; chunks after the first
// carry no header; a limit, a pinned revision and count-only work; writes
// after the stream began are not in it; custom sort orders and revision
// filters are refused as etcd refuses them. Also passes on etcd.
func TestRangeStream(t *testing.T) {
	c := framework.NewCluster(t, 1, framework.Options{})
	cli := c.Client(t)
	ctx := ctxFor(t, time.Minute)
	val := strings.Repeat("v", 2000)
	for i := range 300 {
		if _, err := cli.Put(ctx, fmt.Sprintf("/rs/%04d", i), val); err != nil {
			t.Fatal(err)
		}
	}
	old, err := cli.Put(ctx, "/rs/0000", "changed")
	if err != nil {
		t.Fatal(err)
	}
	pinned := old.Header.Revision - 1

	for _, tc := range []struct {
		name string
		opts []clientv3.OpOption
	}{
		{"prefix", []clientv3.OpOption{clientv3.WithPrefix()}},
		{"limit 25", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithLimit(25)}},
		{"pinned revision", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithRev(pinned)}},
		{"count only", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithCountOnly()}},
		{"keys only, serializable", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithKeysOnly(), clientv3.WithSerializable()}},
		{"range end", []clientv3.OpOption{clientv3.WithRange("/rs/0100")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, err := cli.Get(ctx, "/rs/", tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			ch, err := cli.GetStream(ctx, "/rs/", tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			var chunks []*clientv3.RangeStreamResponse
			for r := range ch {
				if r.Err() != nil {
					t.Fatalf("stream: %v", r.Err())
				}
				chunks = append(chunks, &r)
			}
			for i, r := range chunks[:len(chunks)-1] {
				if r.Header != nil || r.More || r.Count != 0 {
					t.Errorf("chunk %d of %d carries header %v, more %v, count %d; only the last may", i, len(chunks), r.Header, r.More, r.Count)
				}
			}
			got := &clientv3.GetResponse{}
			for _, r := range chunks {
				got.Kvs = append(got.Kvs, r.Kvs...)
			}
			last := chunks[len(chunks)-1]
			if last.Header == nil {
				t.Fatal("the last chunk has no header")
			}
			if last.Header.Revision != want.Header.Revision || last.Count != want.Count || last.More != want.More {
				t.Errorf("stream: revision %d, count %d, more %v; Get: %d, %d, %v", last.Header.Revision, last.Count, last.More, want.Header.Revision, want.Count, want.More)
			}
			if fmt.Sprint(got.Kvs) != fmt.Sprint(want.Kvs) {
				t.Errorf("stream returned %d keys, Get %d; they differ", len(got.Kvs), len(want.Kvs))
			}
			if len(want.Kvs) > 100 && len(chunks) < 2 {
				t.Errorf("%d keys of 2 KB came in %d chunk(s); want several", len(want.Kvs), len(chunks))
			}
		})
	}

	// A write after the stream began is not in it: the stream is read at
	// the revision it started at.
	ch, err := cli.GetStream(ctx, "/rs/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	first := <-ch
	if _, err := cli.Put(ctx, "/rs/9999", "late"); err != nil {
		t.Fatal(err)
	}
	n := len(first.Kvs)
	var lastRev int64
	for r := range ch {
		n += len(r.Kvs)
		if r.Header != nil {
			lastRev = r.Header.Revision
		}
	}
	if n != 300 || lastRev != old.Header.Revision {
		t.Errorf("stream begun before a write: %d keys at revision %d; want 300 at %d", n, lastRev, old.Header.Revision)
	}

	for _, tc := range []struct {
		name string
		opts []clientv3.OpOption
		want string
	}{
		{"sort by value", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByValue, clientv3.SortDescend)}, "custom sort"},
		{"min mod revision", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithMinModRev(5)}, "revision filters"},
	} {
		ch, err := cli.GetStream(ctx, "/rs/", tc.opts...)
		if err == nil {
			for r := range ch {
				if err = r.Err(); err != nil {
					break
				}
			}
		}
		if status.Code(err) != codes.Unimplemented || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want Unimplemented naming %q", tc.name, err, tc.want)
		}
	}
}
