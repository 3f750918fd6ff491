package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cadrekv/cadre/tests/framework"
)

// findBrowser returns a Chromium-like browser on PATH. Without one the
// test is skipped, unless CADRE_REQUIRE_BROWSER=1 (CI installs Chromium
// and sets it, so a missing browser there fails instead of passing
// silently).
func findBrowser(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CADRE_REQUIRE_BROWSER") == "1" {
		t.Fatal("no chromium, chromium-browser or google-chrome on PATH, and CADRE_REQUIRE_BROWSER=1 (install one: apt-get install -y chromium)")
	}
	t.Skip("no chromium, chromium-browser or google-chrome on PATH: skipping the browser test (set CADRE_REQUIRE_BROWSER=1 to fail instead)")
	return ""
}

// artifactsDir is where screenshots go: $CADRE_TEST_ARTIFACTS if set (CI
// keeps it), else a temporary directory.
func artifactsDir(t *testing.T) string {
	if d := os.Getenv("CADRE_TEST_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// TestDashboardInBrowser drives the /ui page of a follower in headless
// Chromium: it names the leader and three voters, shows a learner added
// meanwhile (first unstarted, then started), answers a dry run without
// changing anything, and asks for a login once auth is enabled.
func TestDashboardInBrowser(t *testing.T) {
	framework.SkipUnlessCadre(t)
	browser := findBrowser(t)
	c := framework.NewCluster(t, 3, framework.Options{})
	li := c.Leader(t)
	leader := c.Members[li]
	follower := c.Members[(li+1)%3]
	other := c.Members[(li+2)%3] // the follower the dry run removes
	cli := c.Client(t)
	ctx := ctxFor(t, 3*time.Minute)

	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.WindowSize(1400, 900))...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	// The first action starts the browser and must not carry a timeout
	// (it would stop the browser with it).
	if err := chromedp.Do(bctx, chromedp.Navigate(follower.Endpoint()+"/ui")); err != nil {
		t.Fatalf("open %s/ui in %s: %v", follower.Endpoint(), browser, err)
	}

	dir := artifactsDir(t)
	screenshot := func(name string) {
		sctx, cancel := context.WithTimeout(bctx, 20*time.Second)
		defer cancel()
		png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Logf("screenshot %s: %v", name, err)
			return
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", p)
	}
	pageText := func() string {
		tctx, cancel := context.WithTimeout(bctx, 5*time.Second)
		defer cancel()
		s, _ := chromedp.Run(tctx, chromedp.Evaluate[string](`document.body.innerText`))
		return s
	}
	// waitPage waits until the JavaScript expression is true on the page.
	waitPage := func(what, expr string, d time.Duration) {
		t.Helper()
		wctx, cancel := context.WithTimeout(bctx, d+5*time.Second)
		defer cancel()
		if _, err := chromedp.Run(wctx, chromedp.Poll[chromedp.Void](expr,
			chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(d))); err != nil {
			screenshot("dashboard-failure.png")
			t.Fatalf("page: %s: not true within %v (%v); page text:\n%s", what, d, err, pageText())
		}
	}
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		actx, cancel := context.WithTimeout(bctx, 20*time.Second)
		defer cancel()
		if err := chromedp.Do(actx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	rows := `document.querySelectorAll('#members tbody tr')`

	// A follower's page: three voters, the leader named, each healthy as
	// the leader sees it (connected for the strict check's 5 s).
	waitPage("three healthy voters and the leader named",
		fmt.Sprintf(`%s.length === 3 && [...%s].every(r => r.dataset.role === 'voter' && r.querySelector('.health').textContent.includes('healthy'))
			&& document.getElementById('leader').textContent === %q
			&& document.getElementById('served').textContent === %q
			&& !/undefined|NaN/.test(document.body.innerText)`,
			rows, rows, leader.Name, follower.Name+" (follower)"), 20*time.Second)

	// A learner added: first shown unstarted, then, once its process runs,
	// under its name.
	ports := framework.FreePorts(t, 2)
	peer, client := membURL(ports[0]), membURL(ports[1])
	add, err := cli.MemberAddAsLearner(ctx, []string{peer})
	if err != nil {
		t.Fatalf("add learner: %v", err)
	}
	lid := fmt.Sprintf("%016x", add.Member.ID)
	learnerRow := fmt.Sprintf(`document.querySelector('#members tbody tr[data-id="%s"]')`, lid)
	waitPage("the learner, unstarted", fmt.Sprintf(`%s && %s.dataset.role === 'learner' && %s.dataset.started === 'false'`,
		learnerRow, learnerRow, learnerRow), 10*time.Second)
	var initial []string
	for _, m := range add.Members {
		n := m.Name
		if m.ID == add.Member.ID {
			n = "learner1"
		}
		initial = append(initial, n+"="+m.PeerURLs[0])
	}
	lm := c.AddMemberProcess(t, "learner1", append(membJoinFlags(filepath.Join(c.Dir(), "learner1.data"), peer, client),
		"--name", "learner1", "--initial-advertise-peer-urls", peer,
		"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "existing"), nil)
	lm.WaitHealthy(t, 30*time.Second)
	waitPage("the learner, started, named, a learner badge", fmt.Sprintf(
		`%s && %s.dataset.started === 'true' && %s.querySelector('.name').textContent === 'learner1' && %s.querySelector('.role').textContent.includes('learner')`,
		learnerRow, learnerRow, learnerRow, learnerRow), 20*time.Second)

	// The audit trail on the page names the learner's add.
	waitPage("the learner's add in the membership history", fmt.Sprintf(
		`[...document.querySelectorAll('#history tbody tr')].some(r => r.textContent.includes('add-learner') && r.textContent.includes('%s'))`,
		strings.TrimLeft(lid, "0")), 10*time.Second)

	// The learner's own page answers too, with the leader's view.
	do("open the learner's page", chromedp.Navigate(lm.Endpoint()+"/ui/"))
	waitPage("the learner's page", fmt.Sprintf(`document.getElementById('served').textContent === 'learner1 (learner)'
		&& document.getElementById('leader').textContent === %q
		&& document.querySelectorAll('#members tbody tr').length === 4
		&& document.querySelectorAll('#members tbody .health.ok').length >= 3`, leader.Name), 15*time.Second)
	do("back to the follower's page", chromedp.Navigate(follower.Endpoint()+"/ui/"))

	// The dry-run form: removing a follower is judged by the leader and
	// shown; nothing changes.
	oid := ""
	ml, err := cli.MemberList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ml.Members {
		if m.Name == other.Name {
			oid = fmt.Sprintf("%016x", m.ID)
		}
	}
	do("fill and submit the dry-run form",
		chromedp.SetValue(chromedp.CSS("#dr-action"), "remove"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById('dr-action').dispatchEvent(new Event('change'))`),
		chromedp.SetValue(chromedp.CSS("#dr-id"), oid),
		chromedp.Click(chromedp.CSS("#dr-submit")),
	)
	waitPage("the dry run's verdict", `!document.getElementById('verdict').hidden &&
		document.getElementById('verdict').textContent.includes('Accepted: the change would be made (dry run, nothing changed)') &&
		document.getElementById('verdict').textContent.includes('Quorum 2 → 2') &&
		!/null|undefined|NaN/.test(document.getElementById('verdict').textContent)`, 15*time.Second)
	screenshot("dashboard-follower.png")
	if ml2, err := cli.MemberList(ctx); err != nil {
		t.Fatal(err)
	} else if len(ml2.Members) != 4 {
		t.Fatalf("after the dry run: %d members, want the 4 unchanged", len(ml2.Members))
	}

	// Auth on: the data needs a token, the page asks for a login and, with
	// it, shows the members again.
	if _, err := cli.UserAdd(ctx, "root", "rootpw"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.UserGrantRole(ctx, "root", "root"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.AuthEnable(ctx); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(follower.Endpoint() + "/cadre/v1/dashboard")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET /cadre/v1/dashboard without a token, auth on: %s, want 401", resp.Status)
	}
	waitPage("the login form", `!document.getElementById('login').hidden && document.getElementById('main').hidden`, 10*time.Second)
	do("log in with a wrong password",
		chromedp.SetValue(chromedp.CSS("#login-user"), "root"),
		chromedp.SetValue(chromedp.CSS("#login-password"), "wrong"),
		chromedp.Click(chromedp.CSS("#login-form button")),
	)
	waitPage("the login refused", `document.getElementById('login-error').textContent.includes('authentication failed')`, 10*time.Second)
	do("log in",
		chromedp.SetValue(chromedp.CSS("#login-password"), "rootpw"),
		chromedp.Click(chromedp.CSS("#login-form button")),
	)
	waitPage("the members, logged in", fmt.Sprintf(`!document.getElementById('main').hidden && %s.length === 4 && !document.getElementById('logout').hidden`, rows), 15*time.Second)
	screenshot("dashboard-auth.png")
}
