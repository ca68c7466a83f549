package deploydb_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/deploydb/deploydb"
)

// TestBadInputEndToEnd sends malformed input through every entry point and
// checks that each is refused with ErrInvalidArgument and writes nothing.
func TestBadInputEndToEnd(t *testing.T) {
	t.Parallel()
	svc, pool := newService(t)
	ctx := ctxT(t)
	app := mustApp(t, svc)
	build := mustBuild(t, svc, app.ID, deploydb.BuildSucceeded)
	_, ops := mustRollout(t, svc, app.ID, "t1")
	running := driveTo(t, svc, ops[0].ID, deploydb.OperationRunning)

	huge := strings.Repeat("x", 1<<20)
	far := time.Date(300000, 1, 1, 0, 0, 0, 0, time.UTC)
	counts := func() (n [4]int) {
		err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM apps), (SELECT count(*) FROM builds),
			(SELECT count(*) FROM deployments), (SELECT count(*) FROM deployment_operations)`).Scan(&n[0], &n[1], &n[2], &n[3])
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := counts()
	calls := map[string]func() error{
		"oversized app name":     func() error { _, err := svc.CreateApp(ctx, deploydb.CreateAppParams{Name: huge}); return err },
		"app name with NUL":      func() error { _, err := svc.CreateApp(ctx, deploydb.CreateAppParams{Name: "a\x00b"}); return err },
		"app name invalid UTF-8": func() error { _, err := svc.CreateApp(ctx, deploydb.CreateAppParams{Name: "a\xc3\x28"}); return err },
		"oversized source version": func() error {
			_, _, err := svc.CreateBuild(ctx, deploydb.CreateBuildParams{AppID: app.ID, SourceVersion: huge})
			return err
		},
		"source version with NUL": func() error {
			_, _, err := svc.CreateBuild(ctx, deploydb.CreateBuildParams{AppID: app.ID, SourceVersion: "v1\x00"})
			return err
		},
		"source version invalid UTF-8": func() error {
			_, _, err := svc.CreateBuild(ctx, deploydb.CreateBuildParams{AppID: app.ID, SourceVersion: "\xff\xfe"})
			return err
		},
		"bulk row invalid UTF-8": func() error {
			bad := "\xff"
			_, err := svc.CreateBuilds(ctx, deploydb.CreateBuildsParams{Rows: []deploydb.BuildRow{{AppID: app.ID}, {AppID: app.ID, SourceVersion: bad}}})
			return err
		},
		"bulk row unknown status": func() error {
			_, err := svc.CreateBuilds(ctx, deploydb.CreateBuildsParams{Rows: []deploydb.BuildRow{{AppID: app.ID}, {AppID: app.ID, Status: "PENDING"}}})
			return err
		},
		"oversized environment": func() error {
			_, _, err := svc.CreateDeployment(ctx, deploydb.CreateDeploymentParams{AppID: app.ID, BuildID: build.ID, Environment: huge})
			return err
		},
		"environment with NUL": func() error {
			_, _, err := svc.CreateDeployment(ctx, deploydb.CreateDeploymentParams{AppID: app.ID, BuildID: build.ID, Environment: "prod\x00"})
			return err
		},
		"oversized target": func() error {
			_, _, _, err := svc.CreateDeploymentWithTargets(ctx, deploydb.CreateDeploymentWithTargetsParams{AppID: app.ID, BuildID: build.ID, Environment: "staging", Targets: []string{"ok", huge}})
			return err
		},
		"target invalid UTF-8": func() error {
			_, _, _, err := svc.CreateDeploymentWithTargets(ctx, deploydb.CreateDeploymentWithTargetsParams{AppID: app.ID, BuildID: build.ID, Environment: "staging", Targets: []string{"\xff"}})
			return err
		},
		"oversized worker":        func() error { _, err := svc.ClaimNextOperation(ctx, "t1", huge); return err },
		"oversized failure":       func() error { _, _, err := svc.MarkFailed(ctx, running.ID, huge); return err },
		"failure with NUL":        func() error { _, _, err := svc.MarkFailed(ctx, running.ID, "boom\x00"); return err },
		"unknown build status":    func() error { _, _, err := svc.UpdateBuildStatus(ctx, build.ID, "SUCCEEDED"); return err },
		"unknown deploy status":   func() error { _, _, err := svc.UpdateDeploymentStatus(ctx, 1, "done"); return err },
		"unknown operation state": func() error { _, _, err := svc.TransitionOperation(ctx, running.ID, "paused", ""); return err },
		"negative limit":          func() error { _, err := svc.ListAppBuilds(ctx, deploydb.BuildFilter{AppID: app.ID}, -1); return err },
		"huge limit": func() error {
			_, err := svc.ListAppDeployments(ctx, deploydb.DeploymentFilter{AppID: app.ID}, math.MaxInt)
			return err
		},
		"negative page size": func() error {
			_, err := svc.ListAppsPaged(ctx, deploydb.PageRequest{Size: -5})
			return err
		},
		"huge page size": func() error {
			_, err := svc.ListAppBuildsPaged(ctx, deploydb.BuildFilter{AppID: app.ID}, deploydb.PageRequest{Size: math.MaxInt32 + 1})
			return err
		},
		"oversized cursor": func() error {
			_, err := svc.ListAppBuildsPaged(ctx, deploydb.BuildFilter{AppID: app.ID}, deploydb.PageRequest{Cursor: huge})
			return err
		},
		"timestamp out of range": func() error {
			_, err := svc.ListDeployments(ctx, deploydb.DeploymentFilter{AppID: app.ID, OrderBy: deploydb.OrderByUpdatedAt, UpdatedBefore: far}, deploydb.PageRequest{})
			return err
		},
		"timestamp before year 1": func() error {
			_, err := svc.ListDeployments(ctx, deploydb.DeploymentFilter{AppID: app.ID, OrderBy: deploydb.OrderByUpdatedAt, UpdatedAfter: time.Date(-5, 1, 1, 0, 0, 0, 0, time.UTC)}, deploydb.PageRequest{})
			return err
		},
		"bulk row timestamp out of range": func() error {
			_, err := svc.CreateBuilds(ctx, deploydb.CreateBuildsParams{Rows: []deploydb.BuildRow{{AppID: app.ID, CreatedAt: far}}})
			return err
		},
		"unknown order": func() error {
			_, err := svc.ListDeployments(ctx, deploydb.DeploymentFilter{AppID: app.ID, OrderBy: "id"}, deploydb.PageRequest{})
			return err
		},
	}
	for name, call := range calls {
		err := call()
		if !errors.Is(err, deploydb.ErrInvalidArgument) {
			t.Errorf("%s: %v, want ErrInvalidArgument", name, err)
			continue
		}
		if len(err.Error()) > 2000 {
			t.Errorf("%s: the error echoes the input (%d bytes)", name, len(err.Error()))
		}
	}
	if after := counts(); after != before {
		t.Fatalf("rows changed by refused calls: before %v, after %v", before, after)
	}
	figure(t, "BAD", "%d kinds of bad input refused with ErrInvalidArgument; row counts unchanged %v (apps, builds, deployments, operations)", len(calls), before)
}

// TestRedactionInLogs logs errors from bad DSNs and failed connects through
// slog's text and JSON handlers and every fmt verb: no password appears.
func TestRedactionInLogs(t *testing.T) {
	t.Parallel()
	const secret = "Tr0ub4dor&3"
	dsns := []string{
		"postgres://deploy:" + secret + "@127.0.0.1:1/deploydb?sslmode=disable&connect_timeout=1",
		"postgresql://deploy:" + secret + "@localhost:1/deploydb?sslmode=disable",
		"host=127.0.0.1 port=1 user=deploy password=" + secret + " dbname=x sslmode=disable",
		"host=127.0.0.1 port=1 user=deploy password='" + secret + " x' dbname=x",
		"postgres://deploy:" + secret + "@127.0.0.1:99999/x",
		"postgres://deploy:" + secret + "@[127.0.0.1/x",
		"postgres://deploy:" + secret + "@127.0.0.1:1/x?sslmode=bogus",
	}
	var logs bytes.Buffer
	text := slog.New(slog.NewTextHandler(&logs, nil))
	js := slog.New(slog.NewJSONHandler(&logs, nil))
	for _, dsn := range dsns {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		_, err := deploydb.Open(ctx, dsn, deploydb.WithConnectTimeout(time.Second))
		cancel()
		if err == nil {
			t.Fatal("Open succeeded against a closed port")
		}
		text.Error("open failed", "err", err)
		js.Error("open failed", "err", err)
		logs.WriteString(fmtAll(err))
	}
	if strings.Contains(logs.String(), secret) || strings.Contains(logs.String(), "Tr0ub4dor") {
		t.Fatalf("a password leaked into the logs:\n%s", strings.ReplaceAll(logs.String(), secret, "<SECRET>"))
	}
	figure(t, "S3", "%d bad or unreachable DSNs, errors logged with slog text and JSON and %%v %%+v %%#v %%s %%q: 0 passwords in %d bytes", len(dsns), logs.Len())
}
