package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cadrekv/cadre/tests/framework"
)

// TestEtcdDataDirRefused: cadre started on a data dir the real etcd wrote
// refuses at once, says what the directory is and how to move its data
// (a snapshot), and leaves etcd's backend byte for byte as it was.
func TestEtcdDataDirRefused(t *testing.T) {
	framework.SkipUnlessCadre(t)
	_, dir, stop := startEtcd(t)
	stop()
	data := filepath.Join(dir, "etcd.data")
	db := filepath.Join(data, "member", "snap", "db")
	before, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	res := framework.RunProcessIn(t, "", 30*time.Second, framework.Server(t), []string{"--data-dir", data}, nil, nil)
	if res.Code == 0 || !strings.Contains(res.Stderr, "is etcd's") || !strings.Contains(res.Stderr, "snapshot restore") {
		t.Fatalf("cadre on an etcd data dir: %s", res)
	}
	after, err := os.ReadFile(db)
	if err != nil || !bytes.Equal(before, after) {
		t.Fatalf("etcd's backend changed (err %v)", err)
	}
}
