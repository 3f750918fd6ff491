package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cadrekv/cadre/tests/framework"
)

// TestNoSpaceAlarm fills a small quota: writes are refused with etcd's
// error and the NOSPACE alarm is raised, reads and deletes keep working,
// and compact + defragment + disarm make the member writable again.
func TestNoSpaceAlarm(t *testing.T) {
	c := framework.NewCluster(t, 1, framework.Options{ExtraFlags: []string{"--quota-backend-bytes", fmt.Sprint(4 << 20)}})
	cli := c.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	val := strings.Repeat("x", 100<<10)
	var written int
	var err error
	for written = 0; written < 200; written++ {
		if _, err = cli.Put(ctx, fmt.Sprintf("/big/%03d", written%20), val); err != nil {
			break
		}
	}
	if !errors.Is(err, rpctypes.ErrNoSpace) {
		t.Fatalf("after %d writes of 100 KiB into a 4 MiB quota: err %v, want %v", written, err, rpctypes.ErrNoSpace)
	}
	var alarms *clientv3.AlarmResponse
	for deadline := time.Now().Add(10 * time.Second); ; {
		alarms, err = cli.AlarmList(ctx)
		if err == nil && len(alarms.Alarms) == 1 && alarms.Alarms[0].Alarm == pb.AlarmType_NOSPACE {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("alarm list: %v %v, want one NOSPACE", alarms, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := cli.Put(ctx, "/small", "1"); !errors.Is(err, rpctypes.ErrNoSpace) {
		t.Fatalf("a small write once NOSPACE is raised: %v, want refused", err)
	}
	// /health says why while the alarm is active (etcd: 503, "ALARM
	// NOSPACE"), unless the caller excludes that alarm.
	for _, tc := range []struct {
		query string
		code  int
		body  string
	}{{"", http.StatusServiceUnavailable, `"reason":"ALARM NOSPACE"`}, {"?exclude=NOSPACE", http.StatusOK, `"health":"true"`}} {
		resp, err := http.Get(c.Members[0].Endpoint() + "/health" + tc.query)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code || !strings.Contains(string(b), tc.body) {
			t.Errorf("/health%s under NOSPACE: %d %s; want %d with %s", tc.query, resp.StatusCode, b, tc.code, tc.body)
		}
	}
	if _, err := cli.Get(ctx, "/big/", clientv3.WithPrefix(), clientv3.WithCountOnly()); err != nil {
		t.Fatalf("read under NOSPACE: %v", err)
	}
	del, err := cli.Delete(ctx, "/big/", clientv3.WithPrefix())
	if err != nil {
		t.Fatalf("delete under NOSPACE: %v", err)
	}
	if _, err := cli.Compact(ctx, del.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		t.Fatalf("compact under NOSPACE: %v", err)
	}
	if r := c.Etcdctl(t, "alarm", "list"); r.Code != 0 || !strings.Contains(r.Stdout, "alarm:NOSPACE") {
		t.Fatalf("etcdctl alarm list: %s", r)
	}
	if !framework.IsCadre() {
		if _, err := cli.Defragment(ctx, c.Members[0].Endpoint()); err != nil {
			t.Fatalf("defragment: %v", err)
		}
		// The answer names the alarm it cleared; a second disarm clears
		// nothing and names none.
		for i, want := range []int{1, 0} {
			resp, err := cli.AlarmDisarm(ctx, &clientv3.AlarmMember{MemberID: alarms.Alarms[0].MemberID, Alarm: pb.AlarmType_NOSPACE})
			if err != nil || len(resp.Alarms) != want {
				t.Fatalf("disarm %d: %v (err %v), want %d alarm(s) in the answer", i+1, resp, err, want)
			}
		}
	} else {
		ctl := func(args ...string) framework.Result {
			return framework.RunProcess(t, framework.Cadrectl(t), append([]string{"--endpoints", c.Members[0].Endpoint()}, args...), nil)
		}
		if r := ctl("alarm", "list"); r.Code != 0 || !strings.Contains(r.Stdout, "alarm:NOSPACE") {
			t.Fatalf("cadrectl alarm list: %s", r)
		}
		if r := ctl("defrag"); r.Code != 0 || !strings.Contains(r.Stdout, "Finished defragmenting etcd member[") {
			t.Fatalf("cadrectl defrag: %s", r)
		}
		if r := ctl("alarm", "disarm"); r.Code != 0 || !strings.Contains(r.Stdout, "alarm:NOSPACE") {
			t.Fatalf("cadrectl alarm disarm: %s (want the cleared alarm named)", r)
		}
	}
	if _, err := cli.Put(ctx, "/small", "1"); err != nil {
		t.Fatalf("write after compact + defrag + disarm: %v", err)
	}
	if r := c.Etcdctl(t, "endpoint", "health"); r.Code != 0 {
		t.Fatalf("endpoint health after recovery: %s", r)
	}
}
