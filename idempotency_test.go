package deploydb_test

import (
	"bytes"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/deploydb/deploydb"
)

// TestIdempotentCreates: a repeat with the same key and arguments returns
// the first row and says so; other arguments are ErrConflict; keys are per
// app; calls without a key always create.
func TestIdempotentCreates(t *testing.T) {
	t.Parallel()
	svc, pool := newService(t)
	ctx := ctxT(t)
	app, other := mustApp(t, svc), mustApp(t, svc)
	count := func(table string, key string) (n int) {
		t.Helper()
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM "+table+" WHERE idempotency_key = $1", key).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	first, created, err := svc.CreateBuild(ctx, deploydb.CreateBuildParams{AppID: app.ID, SourceVersion: "v1", IdempotencyKey: "ci-run-17"})
	if err != nil || !created || first.IdempotencyKey != "ci-run-17" {
		t.Fatalf("first CreateBuild: %+v, created %v, %v", first, created, err)
	}
	again, created, err := svc.CreateBuild(ctx, deploydb.CreateBuildParams{AppID: app.ID, SourceVersion: "v1", IdempotencyKey: "ci-run-17"})
	if err != nil || created || again != first {
		t.Fatalf("repeat: %+v, created %v, %v; want the first build, created false", again, created, err)
	}
	_, _, err = svc.CreateBuild(ctx, deploydb.CreateBuildParams{AppID: app.ID, SourceVersion: "v2", IdempotencyKey: "ci-run-17"})
	checkOne(t, "same key, other source version", err, deploydb.ErrConflict)
	if _, created, err := svc.CreateBuild(ctx, deploydb.CreateBuildParams{AppID: other.ID, SourceVersion: "v2", IdempotencyKey: "ci-run-17"}); err != nil || !created {
		t.Fatalf("the same key for another app: created %v, %v", created, err)
	}
	for range 2 {
		if _, created, err := svc.CreateBuild(ctx, deploydb.CreateBuildParams{AppID: app.ID, SourceVersion: "v1"}); err != nil || !created {
			t.Fatalf("without a key: created %v, %v", created, err)
		}
	}
	if n := count("builds", "ci-run-17"); n != 2 {
		t.Fatalf("%d builds carry the key, want 2 (one per app)", n)
	}
	for _, bad := range []string{strings.Repeat("k", deploydb.MaxIdempotencyKeyLen+1), "a\x00b", "\xff"} {
		_, _, err := svc.CreateBuild(ctx, deploydb.CreateBuildParams{AppID: app.ID, IdempotencyKey: bad})
		checkOne(t, "bad key", err, deploydb.ErrInvalidArgument)
	}

	b := mustBuild(t, svc, app.ID, deploydb.BuildSucceeded)
	b2 := mustBuild(t, svc, app.ID, deploydb.BuildSucceeded)
	p := deploydb.CreateDeploymentParams{AppID: app.ID, BuildID: b.ID, Environment: "production", IdempotencyKey: "deploy-42"}
	d, created, err := svc.CreateDeployment(ctx, p)
	if err != nil || !created || d.IdempotencyKey != "deploy-42" {
		t.Fatalf("first CreateDeployment: %+v, %v, %v", d, created, err)
	}
	// The first deployment moves on; the repeat still returns it as it is.
	if _, _, err := svc.UpdateDeploymentStatus(ctx, d.ID, deploydb.DeploymentInProgress); err != nil {
		t.Fatal(err)
	}
	again2, created, err := svc.CreateDeployment(ctx, p)
	if err != nil || created || again2.ID != d.ID || again2.Status != deploydb.DeploymentInProgress {
		t.Fatalf("repeat: %+v, created %v, %v", again2, created, err)
	}
	for name, q := range map[string]deploydb.CreateDeploymentParams{
		"other build":       {AppID: app.ID, BuildID: b2.ID, Environment: "production", IdempotencyKey: "deploy-42"},
		"other environment": {AppID: app.ID, BuildID: b.ID, Environment: "staging", IdempotencyKey: "deploy-42"},
	} {
		_, _, err := svc.CreateDeployment(ctx, q)
		checkOne(t, "same key, "+name, err, deploydb.ErrConflict)
	}
	// A new key on an undeployable build still says why.
	pending := mustBuild(t, svc, app.ID, deploydb.BuildPending)
	_, _, err = svc.CreateDeployment(ctx, deploydb.CreateDeploymentParams{AppID: app.ID, BuildID: pending.ID, Environment: "staging", IdempotencyKey: "deploy-43"})
	checkOne(t, "new key, pending build", err, deploydb.ErrInvalidArgument)
	if n := count("deployments", "deploy-42"); n != 1 {
		t.Fatalf("%d deployments carry the key, want 1", n)
	}

	// With targets: the repeat returns the deployment and its operations;
	// other targets conflict; no second set of operations is written.
	tp := deploydb.CreateDeploymentWithTargetsParams{AppID: app.ID, BuildID: b2.ID, Environment: "canary", Targets: []string{"eu", "us"}, IdempotencyKey: "rollout-1"}
	rd, rops, created, err := svc.CreateDeploymentWithTargets(ctx, tp)
	if err != nil || !created || len(rops) != 2 {
		t.Fatalf("first rollout: %v, %v", created, err)
	}
	tp.Targets = []string{"us", "eu"}
	rd2, rops2, created, err := svc.CreateDeploymentWithTargets(ctx, tp)
	if err != nil || created || rd2.ID != rd.ID || len(rops2) != 2 {
		t.Fatalf("repeated rollout: %+v %v, created %v, %v", rd2, rops2, created, err)
	}
	tp.Targets = []string{"eu"}
	_, _, _, err = svc.CreateDeploymentWithTargets(ctx, tp)
	checkOne(t, "same key, other targets", err, deploydb.ErrConflict)
	var ops int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM deployment_operations WHERE deployment_id = $1`, rd.ID).Scan(&ops); err != nil || ops != 2 {
		t.Fatalf("%d operations, %v; want 2", ops, err)
	}
}

// TestIdempotentCreatesRace: many callers repeating one create at once get
// one row between them, exactly one of them told it created it.
func TestIdempotentCreatesRace(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	ctx := ctxT(t)
	app := mustApp(t, svc)
	const callers = 8
	var (
		wg      sync.WaitGroup
		start   = make(chan struct{})
		created atomic.Int32
		ids     sync.Map
		failed  atomic.Int32
	)
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			b, c, err := svc.CreateBuild(ctx, deploydb.CreateBuildParams{AppID: app.ID, SourceVersion: "v1", IdempotencyKey: "race"})
			if err != nil {
				failed.Add(1)
				t.Error(err)
				return
			}
			if c {
				created.Add(1)
			}
			ids.Store(b.ID, true)
		}()
	}
	close(start)
	wg.Wait()
	n := 0
	ids.Range(func(any, any) bool { n++; return true })
	if created.Load() != 1 || n != 1 || failed.Load() != 0 {
		t.Fatalf("%d callers: %d told they created, %d distinct builds, %d failed; want 1, 1, 0", callers, created.Load(), n, failed.Load())
	}
}

// killProxy, armed, watches the server's replies and withholds the
// CommandComplete of each INSERT, SELECT (a CreateDeployment is an INSERT
// inside a WITH) or COMMIT until the ReadyForQuery that follows it. When
// that says the session is idle, outside a transaction, the write has
// committed: it then drops the connection, so the client never reads the
// reply of a write the server committed. Inside a transaction it passes
// both on.
type killProxy struct {
	armed  atomic.Bool
	killed atomic.Int32
}

func (p *killProxy) onReply(c *proxyConn, typ byte, body []byte) ([]byte, bool) {
	switch {
	case typ == 'C' && p.armed.Load() && (bytes.HasPrefix(body, []byte("INSERT ")) ||
		bytes.HasPrefix(body, []byte("SELECT ")) || bytes.HasPrefix(body, []byte("COMMIT"))):
		c.held = body
		return nil, false
	case typ == 'Z' && c.held != nil && len(body) == 1 && body[0] == 'I' && p.armed.CompareAndSwap(true, false):
		// Committed (idle, outside a transaction); the client has read
		// nothing of it.
		p.killed.Add(1)
		return nil, true
	case typ == 'Z' && c.held != nil:
		// Inside a transaction: nothing is committed yet, pass it on.
		out := append(message('C', c.held), message(typ, body)...)
		c.held = nil
		return out, false
	}
	return message(typ, body), false
}

// TestRepeatAfterLostReply is the retry-safety proof: the connection dies
// after the server committed a CreateBuild (and a CreateDeployment) and
// before the client read the reply; the client sees ErrUnavailable, the row
// is in the database, and repeating the call with the same key returns
// that row instead of writing a second one.
func TestRepeatAfterLostReply(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	proxy := new(killProxy)
	pool := proxiedPool(t, ctx, proxy.onReply)
	svc := deploydb.New(pool)
	app, err := svc.CreateApp(ctx, deploydb.CreateAppParams{Name: "lost-reply"})
	if err != nil {
		t.Fatal(err)
	}
	rows := func(table string) (n int) {
		t.Helper()
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM "+table+" WHERE app_id = $1", app.ID).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	bp := deploydb.CreateBuildParams{AppID: app.ID, SourceVersion: "3f2a9c1", IdempotencyKey: "pipeline-991"}
	proxy.armed.Store(true)
	_, _, err = svc.CreateBuild(ctx, bp)
	checkOne(t, "CreateBuild whose reply was lost", err, deploydb.ErrUnavailable)
	if proxy.killed.Load() != 1 {
		t.Fatalf("the proxy killed %d connections, want 1", proxy.killed.Load())
	}
	if n := rows("builds"); n != 1 {
		t.Fatalf("%d builds after the lost reply, want 1 (the server committed it)", n)
	}
	b, created, err := svc.CreateBuild(ctx, bp)
	if err != nil || created || b.SourceVersion != "3f2a9c1" {
		t.Fatalf("repeat after the lost reply: %+v, created %v, %v", b, created, err)
	}
	if n := rows("builds"); n != 1 {
		t.Fatalf("%d builds after the repeat, want 1", n)
	}

	for _, s := range []deploydb.BuildStatus{deploydb.BuildInProgress, deploydb.BuildSucceeded} {
		if _, _, err := svc.UpdateBuildStatus(ctx, b.ID, s); err != nil {
			t.Fatal(err)
		}
	}
	dp := deploydb.CreateDeploymentParams{AppID: app.ID, BuildID: b.ID, Environment: "production", IdempotencyKey: "deploy-991"}
	proxy.armed.Store(true)
	_, _, err = svc.CreateDeployment(ctx, dp)
	checkOne(t, "CreateDeployment whose reply was lost", err, deploydb.ErrUnavailable)
	if n := rows("deployments"); n != 1 || proxy.killed.Load() != 2 {
		t.Fatalf("%d deployments after the lost reply (%d kills), want 1", n, proxy.killed.Load())
	}
	d, created, err := svc.CreateDeployment(ctx, dp)
	if err != nil || created || d.BuildID != b.ID {
		t.Fatalf("repeat after the lost reply: %+v, created %v, %v", d, created, err)
	}
	if n := rows("deployments"); n != 1 {
		t.Fatalf("%d deployments after the repeat, want 1", n)
	}
	figure(t, "IDEM", "%d connections dropped after the server committed and before the client read the reply; each repeat with its key returned the first row: 1 build, 1 deployment", proxy.killed.Load())
}
