package e2e

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cadrekv/cadre/tests/framework"
)

// TestPlayground runs the README's first command: a local three-member
// cluster on the article's ports that serves etcd clients and stops cleanly
// on Ctrl-C.
func TestPlayground(t *testing.T) {
	framework.SkipUnlessCadre(t)
	for _, addr := range []string{"127.0.0.1:12379", "127.0.0.1:22379", "127.0.0.1:32379", "127.0.0.1:12380", "127.0.0.1:22380", "127.0.0.1:32380"} {
		if !framework.PortFree(addr) {
			t.Skipf("playground port %s is busy", addr)
		}
	}
	dir := t.TempDir()
	pg := framework.StartServer(t, framework.ServerSpec{
		Name:      "playground",
		Args:      []string{"playground", "--dir", dir},
		ClientURL: "http://127.0.0.1:12379",
	})
	endpoints := []string{"127.0.0.1:12379", "127.0.0.1:22379", "127.0.0.1:32379"}
	for _, ep := range endpoints {
		waitHTTPHealthy(t, "http://"+ep, 30*time.Second)
	}
	cli := framework.NewClient(t, endpoints...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "hello", "world"); err != nil {
		t.Fatalf("put through the playground: %v", err)
	}
	ml, err := cli.MemberList(ctx)
	if err != nil || len(ml.Members) != 3 {
		t.Fatalf("member list: %v %v", ml, err)
	}
	for _, name := range []string{"infra1", "infra2", "infra3"} {
		found := false
		for _, m := range ml.Members {
			found = found || m.Name == name
		}
		if !found {
			t.Fatalf("member %s missing from %v", name, ml.Members)
		}
	}
	if err := pg.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	code, exited := pg.Wait(30 * time.Second)
	if !exited || code != 0 {
		t.Fatalf("playground after Ctrl-C: exited=%v code=%d", exited, code)
	}
	out := pg.Log()
	for _, want := range []string{"cadrectl --endpoints=127.0.0.1:12379,127.0.0.1:22379,127.0.0.1:32379", "etcdctl", dir, "infra1", "ready to serve client requests", "stopped"} {
		if !strings.Contains(out, want) {
			t.Errorf("playground output lacks %q", want)
		}
	}
	for _, name := range []string{"infra1", "infra2", "infra3"} {
		if !pathExists(filepath.Join(dir, name+".cadre", "member", "wal")) {
			t.Errorf("no data dir for %s under %s", name, dir)
		}
	}
	for _, addr := range endpoints {
		if !framework.PortFree(addr) {
			t.Errorf("%s still in use after the playground stopped", addr)
		}
	}
}

func waitHTTPHealthy(t *testing.T, base string, timeout time.Duration) {
	t.Helper()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for {
		resp, err := client.Get(base + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not healthy within %v (last error: %v)", base, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func pathExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
