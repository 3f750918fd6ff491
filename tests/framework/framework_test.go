package framework

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestModuleRoot(t *testing.T) {
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil || !strings.Contains(string(b), "module github.com/cadrekv/cadre\n") {
		t.Fatalf("ModuleRoot() = %s: go.mod %q, %v", root, b, err)
	}
}

func TestRunProcess(t *testing.T) {
	res := RunProcess(t, "/bin/sh", []string{"-c", "echo out; echo err >&2; echo ${ETCD_NAME:-unset} ${CADRE_X:-unset} $EXTRA; exit 3"}, []string{"EXTRA=yes"})
	t.Setenv("ETCD_NAME", "leaked")
	t.Setenv("CADRE_X", "leaked")
	res2 := RunProcess(t, "/bin/sh", []string{"-c", "echo ${ETCD_NAME:-unset} ${CADRE_X:-unset}"}, nil)
	if res.Code != 3 || res.TimedOut || res.Stdout != "out\nunset unset yes\n" || res.Stderr != "err\n" {
		t.Fatalf("got %s", res)
	}
	if res2.Stdout != "unset unset\n" {
		t.Fatalf("ETCD_*/CADRE_* leaked into the child: %q", res2.Stdout)
	}
	start := time.Now()
	res = RunProcessIn(t, "", 200*time.Millisecond, "/bin/sh", []string{"-c", "sleep 5"}, nil, nil)
	if !res.TimedOut || res.Code == 0 || time.Since(start) > 4*time.Second {
		t.Fatalf("timeout not enforced: %s after %v", res, time.Since(start))
	}
}

func TestFreePortsDistinct(t *testing.T) {
	ports, err := freePorts(6)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if p <= 0 || seen[p] {
			t.Fatalf("ports %v: not distinct and positive", ports)
		}
		seen[p] = true
	}
}

func TestLockFileExcludes(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lock")
	unlock, err := lockFile(p, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lockFile(p, 300*time.Millisecond); err == nil {
		t.Fatal("second lock acquired while the first is held")
	}
	unlock()
	unlock2, err := lockFile(p, time.Second)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	unlock2()
}

// TestEtcdctlVersion checks the etcdctl the e2e tests use is the pinned
// release. Without ETCDCTL_BIN this builds it from the module proxy once
// (minutes) into ToolsDir; later runs reuse it.
func TestEtcdctlVersion(t *testing.T) {
	bin := Etcdctl(t)
	res := RunProcess(t, bin, []string{"version"}, nil)
	if res.Code != 0 || !strings.Contains(res.Stdout, "etcdctl version: "+strings.TrimPrefix(EtcdVersion, "v")) {
		t.Fatalf("%s version: %s", bin, res)
	}
}
