package deploydb_test

import (
	"fmt"
	"net/url"
	"testing"

	"github.com/deploydb/deploydb"
)

// TestInjectionThroughEveryOption sends SQL through every value a caller
// can set: enumerated options (isolation level, order, sort, status,
// filter environment) are refused before anything is sent, names and
// targets are refused by their format, and free text (source version,
// worker, failure reason) is stored verbatim as a bound parameter. No
// statement in any of them ever runs: the tables they would create do not
// exist afterwards.
func TestInjectionThroughEveryOption(t *testing.T) {
	t.Parallel()
	svc, pool := newService(t)
	ctx := ctxT(t)
	app := mustApp(t, svc)
	build := mustBuild(t, svc, app.ID, deploydb.BuildSucceeded)
	_, ops := mustRollout(t, svc, app.ID, "t1")
	running := driveTo(t, svc, ops[0].ID, deploydb.OperationRunning)
	n := 0
	inject := func() (string, string) {
		n++
		table := fmt.Sprintf("injected_%d", n)
		return table, "x'); CREATE TABLE " + table + " (i int); --"
	}
	var tables []string
	refused := func(what string, call func(sql string) error) {
		table, sql := inject()
		tables = append(tables, table)
		checkOne(t, what, call(sql), deploydb.ErrInvalidArgument)
	}
	refused("TxOptions.Isolation", func(s string) error {
		return svc.InTxWith(ctx, deploydb.TxOptions{Isolation: deploydb.Isolation("read committed; " + s)}, func(*deploydb.Service) error { return nil })
	})
	list := func(f deploydb.DeploymentFilter) error {
		f.AppID = app.ID
		_, err := svc.ListDeployments(ctx, f, deploydb.PageRequest{})
		return err
	}
	refused("DeploymentFilter.OrderBy", func(s string) error { return list(deploydb.DeploymentFilter{OrderBy: deploydb.DeploymentOrder(s)}) })
	refused("DeploymentFilter.Sort", func(s string) error { return list(deploydb.DeploymentFilter{Sort: deploydb.SortDirection(s)}) })
	refused("DeploymentFilter.Status", func(s string) error { return list(deploydb.DeploymentFilter{Status: deploydb.DeploymentStatus(s)}) })
	refused("DeploymentFilter.Environment", func(s string) error { return list(deploydb.DeploymentFilter{Environment: s}) })
	refused("ParseDeploymentFilter", func(s string) error {
		_, err := deploydb.ParseDeploymentFilter(url.Values{"order_by": {s}})
		return err
	})
	refused("PageRequest.Cursor", func(s string) error {
		_, err := svc.ListAppBuildsPaged(ctx, deploydb.BuildFilter{AppID: app.ID}, deploydb.PageRequest{Cursor: s})
		return err
	})
	refused("CreateApp name", func(s string) error {
		_, err := svc.CreateApp(ctx, deploydb.CreateAppParams{Name: s})
		return err
	})
	refused("GetAppByName", func(s string) error { _, err := svc.GetAppByName(ctx, s); return err })
	refused("CreateDeployment environment", func(s string) error {
		_, _, err := svc.CreateDeployment(ctx, deploydb.CreateDeploymentParams{AppID: app.ID, BuildID: build.ID, Environment: s})
		return err
	})
	refused("GetLatestDeployment environment", func(s string) error { _, err := svc.GetLatestDeployment(ctx, app.ID, s); return err })
	refused("target", func(s string) error {
		_, _, _, err := svc.CreateDeploymentWithTargets(ctx, deploydb.CreateDeploymentWithTargetsParams{AppID: app.ID, BuildID: build.ID, Environment: "staging", Targets: []string{s}})
		return err
	})
	refused("ClaimNextOperation target", func(s string) error { _, err := svc.ClaimNextOperation(ctx, s, "w"); return err })
	refused("ListActiveOperationsByTarget", func(s string) error { _, err := svc.ListActiveOperationsByTarget(ctx, s, 0); return err })
	refused("UpdateBuildStatus status", func(s string) error {
		_, _, err := svc.UpdateBuildStatus(ctx, build.ID, deploydb.BuildStatus(s))
		return err
	})
	refused("UpdateDeploymentStatus status", func(s string) error {
		_, _, err := svc.UpdateDeploymentStatus(ctx, 1, deploydb.DeploymentStatus(s))
		return err
	})
	refused("TransitionOperation state", func(s string) error {
		_, _, err := svc.TransitionOperation(ctx, running.ID, deploydb.OperationState(s), "")
		return err
	})
	refused("BuildRow.Status", func(s string) error {
		_, err := svc.CreateBuilds(ctx, deploydb.CreateBuildsParams{Rows: []deploydb.BuildRow{{AppID: app.ID, Status: deploydb.BuildStatus(s)}}})
		return err
	})

	// Free text is data: stored as given.
	table, text := inject()
	tables = append(tables, table)
	b, _, err := svc.CreateBuild(ctx, deploydb.CreateBuildParams{AppID: app.ID, SourceVersion: text})
	if err != nil || b.SourceVersion != text {
		t.Errorf("source version: %q, %v", b.SourceVersion, err)
	}
	claimedOps := mustRolloutOps(t, svc, app.ID, "t2")
	table, text = inject()
	tables = append(tables, table)
	o, err := svc.ClaimNextOperation(ctx, "t2", text)
	if err != nil || o.ClaimedBy != text || o.ID != claimedOps[0].ID {
		t.Errorf("worker: %q, %v", o.ClaimedBy, err)
	}
	table, text = inject()
	tables = append(tables, table)
	o, _, err = svc.MarkFailed(ctx, o.ID, text)
	if err != nil || o.LastError != text {
		t.Errorf("failure reason: %q, %v", o.LastError, err)
	}

	for _, table := range tables {
		var exists bool
		if err := pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, table).Scan(&exists); err != nil || exists {
			t.Errorf("table %s exists (%v): a value ran as SQL", table, err)
		}
	}
	figure(t, "INJ", "%d values carrying SQL through every option and argument: %d refused before sending, %d stored verbatim; 0 statements ran", len(tables), len(tables)-3, 3)
}

// mustRolloutOps creates a rollout of a fresh succeeded build to targets
// and returns its operations.
func mustRolloutOps(t *testing.T, svc *deploydb.Service, appID deploydb.AppID, targets ...string) []deploydb.Operation {
	t.Helper()
	_, ops := mustRollout(t, svc, appID, targets...)
	return ops
}
