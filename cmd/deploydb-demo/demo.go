package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/db"
	"github.com/deploydb/deploydb/internal/pgtest"
)

// demo seeds a few apps, builds and deployments in the database at url and
// prints what the API does with them, including the errors it refuses with.
// Without a URL it starts a throwaway local PostgreSQL and removes it
// afterwards.
func demo(ctx context.Context, url string, stdout io.Writer) (err error) {
	if url == "" {
		fmt.Fprintln(stdout, "No DATABASE_URL: starting a throwaway PostgreSQL for the demo...")
		srv, serr := pgtest.Start(ctx)
		if serr != nil {
			return serr
		}
		// err is the named result: a failure to remove the server is
		// reported when the demo itself succeeded.
		defer func() {
			if cerr := srv.Close(); cerr != nil && err == nil {
				err = cerr
			}
			fmt.Fprintln(stdout, "\nThrowaway PostgreSQL removed.")
		}()
		if url, err = srv.CreateDatabase(ctx, "deploydb_demo", ""); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Using %s.\n", srv)
	}
	w := &walkthrough{out: stdout}

	w.section("1. Apply the embedded migrations (db.Migrate)")
	if err := db.Migrate(ctx, url, db.WithLog(func(f string, a ...any) { w.line(f, a...) })); err != nil {
		return err
	}
	st, err := db.Status(ctx, url)
	if err != nil {
		return err
	}
	for _, f := range st {
		w.line("%s %-12s %s", f.Version, f.Description, f.State)
	}

	svc, err := deploydb.Open(ctx, url)
	if err != nil {
		return err
	}
	defer svc.Close()
	// A run-unique suffix keeps the demo repeatable against a shared database.
	suffix := strconv.FormatInt(time.Now().UnixNano()%(1<<40), 36)

	w.section("2. Apps, and a name that is not a DNS label")
	checkout, err := svc.CreateApp(ctx, deploydb.CreateAppParams{Name: "checkout-" + suffix})
	if err != nil {
		return err
	}
	search, err := svc.CreateApp(ctx, deploydb.CreateAppParams{Name: "search-" + suffix})
	if err != nil {
		return err
	}
	w.line("created app %d %q and app %d %q", checkout.ID, checkout.Name, search.ID, search.Name)
	_, err = svc.CreateApp(ctx, deploydb.CreateAppParams{Name: "Checkout_Service"})
	w.refused("CreateApp(\"Checkout_Service\")", err, deploydb.ErrInvalidArgument)
	_, err = svc.CreateApp(ctx, deploydb.CreateAppParams{Name: checkout.Name})
	w.refused("CreateApp(duplicate name)", err, deploydb.ErrConflict)

	w.section("3. Builds and their lifecycle")
	var builds []deploydb.Build
	for i, sha := range []string{"3f2a9c1", "8b7d2e0", "c41f5aa", "d9e0b17", "e5a3f62"} {
		b, _, err := svc.CreateBuild(ctx, deploydb.CreateBuildParams{AppID: checkout.ID, SourceVersion: sha})
		if err != nil {
			return err
		}
		if b, _, err = svc.UpdateBuildStatus(ctx, b.ID, deploydb.BuildInProgress); err != nil {
			return err
		}
		end := deploydb.BuildSucceeded
		if i == 3 {
			end = deploydb.BuildFailed
		}
		if b, _, err = svc.UpdateBuildStatus(ctx, b.ID, end); err != nil {
			return err
		}
		builds = append(builds, b)
		w.line("build %d of %s: pending -> in_progress -> %s (started %s, finished %s)",
			b.ID, sha, b.Status, clock(b.StartedAt), clock(b.FinishedAt))
	}
	again, _, err := svc.UpdateBuildStatus(ctx, builds[0].ID, deploydb.BuildSucceeded)
	if err != nil {
		return err
	}
	w.line("repeating succeeded on build %d is a no-op: status %s, updated_at unchanged: %v",
		again.ID, again.Status, again.UpdatedAt.Equal(builds[0].UpdatedAt))
	_, _, err = svc.UpdateBuildStatus(ctx, builds[0].ID, deploydb.BuildInProgress)
	w.refused(fmt.Sprintf("UpdateBuildStatus(%d, in_progress) after succeeded", builds[0].ID), err, deploydb.ErrInvalidTransition)
	var te *deploydb.TransitionError
	if errors.As(err, &te) {
		w.line("  the *TransitionError says From=%s To=%s", te.From, te.To)
	}

	w.section("4. Keyset pages of builds (ListAppBuildsPaged, 2 per page)")
	page := deploydb.PageRequest{Size: 2}
	for n := 1; ; n++ {
		p, err := svc.ListAppBuildsPaged(ctx, deploydb.BuildFilter{AppID: checkout.ID}, page)
		if err != nil {
			return err
		}
		ids := ""
		for _, b := range p.Items {
			ids += fmt.Sprintf(" #%d(%s)", b.ID, b.SourceVersion)
		}
		w.line("page %d:%s  next cursor: %s", n, ids, short(p.NextCursor))
		if p.NextCursor == "" {
			break
		}
		page.Cursor = p.NextCursor
	}
	_, err = svc.ListAppBuildsPaged(ctx, deploydb.BuildFilter{AppID: search.ID}, page)
	w.refused("reusing checkout's cursor for the search app", err, deploydb.ErrInvalidArgument)

	w.section("5. Deployments")
	latest, err := svc.GetLatestSuccessfulBuild(ctx, checkout.ID)
	if err != nil {
		return err
	}
	w.line("latest successful build of %s: #%d (%s)", checkout.Name, latest.ID, latest.SourceVersion)
	_, _, err = svc.CreateDeployment(ctx, deploydb.CreateDeploymentParams{AppID: checkout.ID, BuildID: builds[3].ID, Environment: "production"})
	w.refused(fmt.Sprintf("deploying failed build #%d", builds[3].ID), err, deploydb.ErrInvalidArgument)
	staging, _, err := svc.CreateDeployment(ctx, deploydb.CreateDeploymentParams{AppID: checkout.ID, BuildID: builds[2].ID, Environment: "staging"})
	if err != nil {
		return err
	}
	prod, _, err := svc.CreateDeployment(ctx, deploydb.CreateDeploymentParams{AppID: checkout.ID, BuildID: latest.ID, Environment: "production"})
	if err != nil {
		return err
	}
	if prod, _, err = svc.UpdateDeploymentStatus(ctx, prod.ID, deploydb.DeploymentInProgress); err != nil {
		return err
	}
	w.line("deployment %d of build #%d to %s: %s", prod.ID, prod.BuildID, prod.Environment, prod.Status)
	second, _, err := svc.CreateDeployment(ctx, deploydb.CreateDeploymentParams{AppID: checkout.ID, BuildID: builds[1].ID, Environment: "production"})
	if err != nil {
		return err
	}
	_, _, err = svc.UpdateDeploymentStatus(ctx, second.ID, deploydb.DeploymentInProgress)
	w.refused(fmt.Sprintf("starting deployment %d while %d is in progress in production", second.ID, prod.ID), err, deploydb.ErrConflict)
	if prod, _, err = svc.UpdateDeploymentStatus(ctx, prod.ID, deploydb.DeploymentDeployed); err != nil {
		return err
	}
	if _, _, err = svc.UpdateDeploymentStatus(ctx, second.ID, deploydb.DeploymentCanceled); err != nil {
		return err
	}
	if _, _, err = svc.UpdateDeploymentStatus(ctx, staging.ID, deploydb.DeploymentInProgress); err != nil {
		return err
	}
	if _, _, err = svc.UpdateDeploymentStatus(ctx, staging.ID, deploydb.DeploymentDeployed); err != nil {
		return err
	}
	dwb, err := svc.GetDeploymentWithBuild(ctx, prod.ID)
	if err != nil {
		return err
	}
	w.line("GetDeploymentWithBuild(%d): %s to %s, %s at %s; build #%d %s (%s)", prod.ID, dwb.Deployment.Status,
		dwb.Deployment.Environment, "finished", clock(dwb.Deployment.FinishedAt), dwb.Build.ID, dwb.Build.SourceVersion, dwb.Build.Status)
	_, _, err = svc.UpdateDeploymentStatus(ctx, prod.ID, deploydb.DeploymentInProgress)
	w.refused(fmt.Sprintf("moving deployed deployment %d back to in_progress", prod.ID), err, deploydb.ErrInvalidTransition)

	w.section("6. ListDeployments filters (GitLab-style)")
	show := func(label string, f deploydb.DeploymentFilter) error {
		f.AppID = checkout.ID
		p, err := svc.ListDeployments(ctx, f, deploydb.PageRequest{})
		if err != nil {
			w.refused(label, err, deploydb.ErrInvalidArgument)
			return nil
		}
		s := ""
		for _, d := range p.Items {
			s += fmt.Sprintf(" #%d(%s,%s)", d.ID, d.Environment, d.Status)
		}
		w.line("%s:%s", label, s)
		return nil
	}
	_ = show("newest first", deploydb.DeploymentFilter{})
	_ = show("environment=production", deploydb.DeploymentFilter{Environment: "production"})
	_ = show("status=deployed order_by=finished_at sort=asc", deploydb.DeploymentFilter{Status: deploydb.DeploymentDeployed, OrderBy: deploydb.OrderByFinishedAt, Sort: deploydb.SortAsc})
	_ = show("finished_after without order_by=finished_at", deploydb.DeploymentFilter{FinishedAfter: time.Now().Add(-time.Hour)})

	w.section("7. Deleting a build that is deployed")
	err = svc.DeleteBuild(ctx, latest.ID)
	w.refused(fmt.Sprintf("DeleteBuild(%d)", latest.ID), err, deploydb.ErrInUse)
	if err := svc.DeleteBuild(ctx, builds[3].ID); err != nil {
		return err
	}
	w.line("DeleteBuild(%d) of the undeployed failed build: done", builds[3].ID)
	if err := svc.DeleteApp(ctx, search.ID); err != nil {
		return err
	}
	w.line("DeleteApp(%d): done", search.ID)
	if err := demoRollout(ctx, w, svc, checkout.ID, latest.ID); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "\nDemo finished.")
	return nil
}

type walkthrough struct{ out io.Writer }

func (w *walkthrough) section(title string) { fmt.Fprintf(w.out, "\n== %s\n", title) }

func (w *walkthrough) line(format string, args ...any) {
	fmt.Fprintf(w.out, "   "+format+"\n", args...)
}

// refused prints an expected refusal, and says so loudly if the error was
// not the expected kind.
func (w *walkthrough) refused(what string, err, want error) {
	switch {
	case err == nil:
		w.line("UNEXPECTED: %s was accepted", what)
	case !errors.Is(err, want):
		w.line("UNEXPECTED: %s failed with %v (want %v)", what, err, want)
	default:
		w.line("refused as expected, %s:\n      %v", what, err)
	}
}

func clock(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("15:04:05.000")
}

func short(c string) string {
	if c == "" {
		return "(none: last page)"
	}
	if len(c) > 16 {
		return "…" + c[len(c)-16:]
	}
	return c
}

// demoRollout deploys a build to three targets: one is cut over while
// another waits, one fails and is retried; the deployment's status follows.
func demoRollout(ctx context.Context, w *walkthrough, svc *deploydb.Service, appID deploydb.AppID, buildID deploydb.BuildID) error {
	w.section("8. A rollout to three targets (CreateDeploymentWithTargets)")
	d, ops, _, err := svc.CreateDeploymentWithTargets(ctx, deploydb.CreateDeploymentWithTargetsParams{AppID: appID, BuildID: buildID, Environment: "canary", Targets: []string{"eu-west", "us-east", "ap-south"}})
	if err != nil {
		return err
	}
	w.line("deployment %d to canary with %d operations; deployment status %s", d.ID, len(ops), d.Status)
	step := func(what string, o deploydb.Operation, err error) error {
		if err != nil {
			return err
		}
		dep, err := svc.GetDeployment(ctx, d.ID)
		if err != nil {
			return err
		}
		w.line("%-44s %-9s -> %-20s deployment: %s", what, o.Target, o.State, dep.Status)
		return nil
	}
	byTarget := map[string]deploydb.OperationID{}
	for _, o := range ops {
		byTarget[o.Target] = o.ID
	}
	for _, target := range []string{"eu-west", "us-east", "ap-south"} {
		o, err := svc.ClaimNextOperation(ctx, target, "worker-"+target)
		if err := step("ClaimNextOperation(worker-"+target+")", o, err); err != nil {
			return err
		}
	}
	for _, target := range []string{"eu-west", "us-east"} {
		o, _, err := svc.MarkWaitingForCutover(ctx, byTarget[target])
		if err := step("MarkWaitingForCutover", o, err); err != nil {
			return err
		}
	}
	o, _, err := svc.MarkCuttingOver(ctx, byTarget["eu-west"])
	if err := step("MarkCuttingOver (us-east keeps waiting)", o, err); err != nil {
		return err
	}
	o, _, err = svc.MarkCompleted(ctx, byTarget["eu-west"])
	if err := step("MarkCompleted", o, err); err != nil {
		return err
	}
	o, _, err = svc.MarkFailed(ctx, byTarget["ap-south"], "health check timed out")
	if err := step("MarkFailed(\"health check timed out\")", o, err); err != nil {
		return err
	}
	_, _, err = svc.MarkCompleted(ctx, byTarget["ap-south"])
	w.refused("MarkCompleted on the failed ap-south", err, deploydb.ErrInvalidTransition)
	_, _, err = svc.UpdateDeploymentStatus(ctx, d.ID, deploydb.DeploymentCanceled)
	w.refused("a manual status change on a rollout", err, deploydb.ErrConflict)
	o, _, err = svc.Retry(ctx, byTarget["ap-south"])
	if err := step(fmt.Sprintf("Retry (attempt %d, last error kept)", o.Attempt), o, err); err != nil {
		return err
	}
	o, err = svc.ClaimNextOperation(ctx, "ap-south", "worker-ap-south-2")
	if err := step("ClaimNextOperation(worker-ap-south-2)", o, err); err != nil {
		return err
	}
	o, _, err = svc.MarkCompleted(ctx, byTarget["ap-south"])
	if err := step("MarkCompleted", o, err); err != nil {
		return err
	}
	o, _, err = svc.MarkCuttingOver(ctx, byTarget["us-east"])
	if err := step("MarkCuttingOver", o, err); err != nil {
		return err
	}
	o, _, err = svc.MarkCompleted(ctx, byTarget["us-east"])
	if err := step("MarkCompleted", o, err); err != nil {
		return err
	}
	final, err := svc.ListDeploymentOperations(ctx, d.ID)
	if err != nil {
		return err
	}
	for _, o := range final {
		w.line("  %-9s %-10s attempt %d, claimed by %s, last error: %s", o.Target, o.State, o.Attempt, orDash(o.ClaimedBy), orDash(o.LastError))
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
