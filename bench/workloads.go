package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/deploydb/deploydb"
)

// errDone ends a worker's loop early (a consumed pool), without failing the
// cell.
var errDone = errors.New("done")

// worker is one goroutine of a cell: its random numbers and scratch space.
type worker struct {
	rng *rand.Rand
	dwb deploydb.DeploymentWithBuild
	d   deploydb.Deployment
	w5  any // W5 rows prepared for the impl
}

// cellState is shared by the workers of one cell.
type cellState struct {
	next atomic.Int64 // next W4 pool index
	ok   atomic.Int64 // W4 operations that changed their row
}

// workload is one row of the report.
type workload struct {
	key       string // benchmark name, e.g. "W1" or "W2/hot/100k"
	title     string
	impls     map[string]bool // which Go implementations run it (nil: all)
	pgbench   string          // script in pgbench/, "" for none
	rowsPerOp int             // W5: rows per operation, for rows/s
	longer    int             // cells run this many times the duration (0: once)
	// op runs one operation.
	op func(ctx context.Context, im impl, w *worker, c *cellState) error
	// before prepares a worker; after checks and cleans up after a cell.
	before func(im impl, w *worker)
	after  func(ctx context.Context, im impl, c *cellState, ops int64) error
}

func (w *workload) runs(im string) bool {
	return w.impls == nil || w.impls[im]
}

// workloads builds the workload list on the fixtures.
func workloads(fx *fixtures, pool *pgxpool.Pool, depths []int) []*workload {
	w1 := func(ctx context.Context, im impl, w *worker) error {
		id := 1 + w.rng.Int64N(fx.maxDeployment)
		return im.getDeploymentWithBuild(ctx, id, &w.dwb)
	}
	w4 := func(ctx context.Context, im impl, w *worker, c *cellState) error {
		i := c.next.Add(1) - 1
		if i >= int64(len(fx.w4Pool)) {
			return errDone
		}
		if err := im.cancelDeployment(ctx, fx.w4Pool[i], &w.d); err != nil {
			return err
		}
		c.ok.Add(1)
		return nil
	}
	resetW4 := func(ctx context.Context, _ impl, c *cellState, _ int64) error {
		return fx.resetW4(ctx, pool, c.ok.Load())
	}
	core := map[string]bool{"deploydb": true, "sqlc": true, "pgx": true}

	ws := []*workload{{
		key: "W1", title: "GetDeploymentWithBuild by random id", pgbench: "w1.sql",
		op: func(ctx context.Context, im impl, w *worker, _ *cellState) error { return w1(ctx, im, w) },
	}}
	page := func(key, title string, impls map[string]bool) {
		p := fx.pages[key]
		ws = append(ws, &workload{key: "W2/" + key, title: title, impls: impls, pgbench: "w2_keyset.sql",
			op: func(ctx context.Context, im impl, w *worker, _ *cellState) error {
				return im.listPage(ctx, p, nil)
			}})
	}
	page("hot/first", "ListDeployments keyset page of 50, hot app, first page", nil)
	page("typical/first", "ListDeployments keyset page of 50, typical app, first page", nil)
	for _, d := range depths {
		page(depthName(d), fmt.Sprintf("ListDeployments keyset page of 50, hot app, at depth %d", d), core)
	}
	for _, d := range depths {
		p := fx.pages["offset/"+depthName(d)]
		ws = append(ws, &workload{key: "W2/offset/" + depthName(d), pgbench: "w2_offset.sql",
			title: fmt.Sprintf("control: the same page by LIMIT/OFFSET %d (hand-written pgx only)", d),
			impls: map[string]bool{"pgx": true},
			op: func(ctx context.Context, im impl, w *worker, _ *cellState) error {
				return im.(rawImpl).listPageOffset(ctx, p, nil)
			}})
	}
	ws = append(ws,
		&workload{key: "W3", title: "CreateDeployment (guarded INSERT ... SELECT ... RETURNING)",
			op: func(ctx context.Context, im impl, w *worker, _ *cellState) error {
				p := fx.w3Pairs[w.rng.IntN(len(fx.w3Pairs))]
				return im.createDeployment(ctx, p.app, p.build, "production", &w.d)
			},
			after: func(ctx context.Context, _ impl, _ *cellState, ops int64) error {
				n, err := fx.cleanW3(ctx, pool)
				if err == nil && n != ops {
					err = fmt.Errorf("W3: %d operations but %d deployments created", ops, n)
				}
				return err
			}},
		&workload{key: "W4", title: "UpdateDeploymentStatus pending -> canceled (exactly one row changed)",
			op: w4, after: resetW4},
		&workload{key: "W5", title: fmt.Sprintf("bulk insert of %d builds", len(fx.w5Rows)), rowsPerOp: len(fx.w5Rows), longer: 3,
			before: func(im impl, w *worker) { w.w5 = im.prepareBuilds(fx.w5RowsFor(im.name())) },
			op: func(ctx context.Context, im impl, w *worker, _ *cellState) error {
				n, err := im.insertBuilds(ctx, w.w5)
				if err == nil && n != int64(len(fx.w5Rows)) {
					err = fmt.Errorf("inserted %d rows, want %d", n, len(fx.w5Rows))
				}
				return err
			},
			after: func(ctx context.Context, im impl, _ *cellState, ops int64) error {
				n, err := fx.cleanW5(ctx, pool, im.name())
				if err == nil && n != ops*int64(len(fx.w5Rows)) {
					err = fmt.Errorf("W5: %d operations but %d builds inserted", ops, n)
				}
				return err
			}},
		&workload{key: "W6", title: "90% W1 reads, 10% W4 writes",
			op: func(ctx context.Context, im impl, w *worker, c *cellState) error {
				if w.rng.IntN(10) == 0 {
					return w4(ctx, im, w, c)
				}
				return w1(ctx, im, w)
			},
			after: resetW4},
	)
	return ws
}

// --- cross-check ---

// normDeployment makes deployments from different drivers comparable: UTC
// times, no monotonic clock. The peers select the workloads' nine columns;
// the service also reads the operation counts and the cancel time, which
// are left out of the comparison.
func normDeployment(d deploydb.Deployment) deploydb.Deployment {
	d.Operations, d.CanceledAt = deploydb.OperationCounts{}, time.Time{}
	d.CreatedAt, d.UpdatedAt = d.CreatedAt.UTC(), d.UpdatedAt.UTC()
	d.StartedAt, d.FinishedAt = utc(d.StartedAt), utc(d.FinishedAt)
	return d
}

func normBuild(b deploydb.Build) deploydb.Build {
	b.CreatedAt, b.UpdatedAt = b.CreatedAt.UTC(), b.UpdatedAt.UTC()
	b.StartedAt, b.FinishedAt = utc(b.StartedAt), utc(b.FinishedAt)
	return b
}

// utc returns t in UTC; the zero time (NULL) stays the zero time.
func utc(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC()
}

// crossCheck runs every workload once per implementation on the same
// inputs and compares the results with the hand-written pgx ones; pgbench's
// scripts are run through pgx with the same inputs. Any difference is an
// error: timing only starts when they all agree.
func crossCheck(ctx context.Context, pool *pgxpool.Pool, fx *fixtures, impls []impl, scripts map[string]*pgbenchScript, logf func(string, ...any)) error {
	var raw impl
	for _, im := range impls {
		if im.name() == "pgx" {
			raw = im
		}
	}
	diff := func(what string, im string, got, want any) error {
		if !reflect.DeepEqual(got, want) {
			return fmt.Errorf("cross-check %s: %s returned\n  %+v\nwant (pgx)\n  %+v", what, im, got, want)
		}
		return nil
	}

	// W1: the same ids, including the first and the last.
	r := rand.New(rand.NewPCG(1, 2))
	ids := []int64{1, fx.maxDeployment}
	for range 48 {
		ids = append(ids, 1+r.Int64N(fx.maxDeployment))
	}
	for _, id := range ids {
		var want deploydb.DeploymentWithBuild
		if err := raw.getDeploymentWithBuild(ctx, id, &want); err != nil {
			return fmt.Errorf("cross-check W1 id %d: pgx: %w", id, err)
		}
		want = deploydb.DeploymentWithBuild{Deployment: normDeployment(want.Deployment), Build: normBuild(want.Build)}
		for _, im := range impls {
			var got deploydb.DeploymentWithBuild
			if err := im.getDeploymentWithBuild(ctx, id, &got); err != nil {
				return fmt.Errorf("cross-check W1 id %d: %s: %w", id, im.name(), err)
			}
			got = deploydb.DeploymentWithBuild{Deployment: normDeployment(got.Deployment), Build: normBuild(got.Build)}
			if err := diff(fmt.Sprintf("W1 id %d", id), im.name(), got, want); err != nil {
				return err
			}
		}
		got, err := scripts["w1.sql"].queryDeploymentWithBuild(ctx, pool, map[string]any{"id": id})
		if err != nil {
			return fmt.Errorf("cross-check W1: pgbench script: %w", err)
		}
		if err := diff(fmt.Sprintf("W1 id %d", id), "pgbench script", got, want); err != nil {
			return err
		}
	}
	logf("cross-check W1: %d ids, %d implementations and the pgbench script agree", len(ids), len(impls))

	// W2: every page; the service returns 50 rows, the others 51.
	for name, p := range fx.pages {
		var want []deploydb.Deployment
		if err := raw.listPage(ctx, p, &want); err != nil {
			return fmt.Errorf("cross-check W2 %s: pgx: %w", name, err)
		}
		if len(want) != pageSize+1 {
			return fmt.Errorf("cross-check W2 %s: pgx returned %d rows, want %d", name, len(want), pageSize+1)
		}
		for i := range want {
			want[i] = normDeployment(want[i])
		}
		check := func(who string, got []deploydb.Deployment) error {
			n := min(len(got), pageSize)
			for i := range got {
				got[i] = normDeployment(got[i])
			}
			if len(got) < pageSize {
				return fmt.Errorf("cross-check W2 %s: %s returned %d rows", name, who, len(got))
			}
			return diff("W2 "+name, who, got[:n], want[:n])
		}
		if len(name) > 7 && name[:7] == "offset/" {
			var got []deploydb.Deployment
			if err := raw.(rawImpl).listPageOffset(ctx, p, &got); err != nil {
				return err
			}
			if err := check("pgx OFFSET", got); err != nil {
				return err
			}
			if got, err := scripts["w2_offset.sql"].queryDeployments(ctx, pool, map[string]any{"app": p.app, "off": int64(p.offset)}); err != nil {
				return err
			} else if err := check("pgbench OFFSET script", got); err != nil {
				return err
			}
			continue
		}
		for _, im := range impls {
			var got []deploydb.Deployment
			if err := im.listPage(ctx, p, &got); err != nil {
				return fmt.Errorf("cross-check W2 %s: %s: %w", name, im.name(), err)
			}
			if err := check(im.name(), got); err != nil {
				return err
			}
		}
		got, err := scripts["w2_keyset.sql"].queryDeployments(ctx, pool, map[string]any{"app": p.app, "cursor_at": p.at, "cursor_id": p.id})
		if err != nil {
			return fmt.Errorf("cross-check W2: pgbench script: %w", err)
		}
		if err := check("pgbench script", got); err != nil {
			return err
		}
	}
	logf("cross-check W2: %d pages agree (keyset and OFFSET, every implementation, pgbench scripts)", len(fx.pages))

	// W3: each implementation creates a deployment of the same build.
	pair := fx.w3Pairs[0]
	var w3 []deploydb.Deployment
	for _, im := range impls {
		var d deploydb.Deployment
		if err := im.createDeployment(ctx, pair.app, pair.build, "production", &d); err != nil {
			return fmt.Errorf("cross-check W3: %s: %w", im.name(), err)
		}
		w3 = append(w3, d)
	}
	for i, d := range w3 {
		var stored deploydb.Deployment
		if err := scanDeployment(raw.(rawImpl).pool.QueryRow(ctx, "SELECT "+deploymentCols+" FROM deployments WHERE id = $1", d.ID), &stored); err != nil {
			return fmt.Errorf("cross-check W3: %s's deployment %d: %w", impls[i].name(), d.ID, err)
		}
		if err := diff("W3 (returned vs stored)", impls[i].name(), normDeployment(d), normDeployment(stored)); err != nil {
			return err
		}
		want := deploydb.Deployment{AppID: deploydb.AppID(pair.app), BuildID: deploydb.BuildID(pair.build), Environment: "production", Status: "pending"}
		d.ID, d.CreatedAt, d.UpdatedAt = 0, time.Time{}, time.Time{}
		if err := diff("W3", impls[i].name(), d, want); err != nil {
			return err
		}
	}
	if n, err := fx.cleanW3(ctx, pool); err != nil || n != int64(len(impls)) {
		return fmt.Errorf("cross-check W3: cleaned %d deployments (%v)", n, err)
	}
	logf("cross-check W3: %d implementations create the same deployment", len(impls))

	// W4: each cancels its own pending deployment; exactly those change.
	for i, im := range impls {
		id := fx.w4Pool[i]
		var d deploydb.Deployment
		if err := im.cancelDeployment(ctx, id, &d); err != nil {
			return fmt.Errorf("cross-check W4: %s: %w", im.name(), err)
		}
		if int64(d.ID) != id || d.Status != "canceled" || !d.StartedAt.IsZero() || d.FinishedAt.IsZero() || d.FinishedAt.Before(d.CreatedAt) {
			return fmt.Errorf("cross-check W4: %s returned %+v", im.name(), d)
		}
		// A second cancel changes nothing: the service says so by returning
		// the row unchanged (its documented idempotence), the others by
		// reporting no row.
		var again deploydb.Deployment
		err := im.cancelDeployment(ctx, id, &again)
		if im.name() == "deploydb" {
			if err != nil || !again.UpdatedAt.Equal(d.UpdatedAt) {
				return fmt.Errorf("cross-check W4: deploydb repeated cancel: %v, updated_at %v vs %v", err, again.UpdatedAt, d.UpdatedAt)
			}
		} else if !errors.Is(err, errNotOneRow) {
			return fmt.Errorf("cross-check W4: %s repeated cancel: %v, want no row changed", im.name(), err)
		}
	}
	if err := fx.resetW4(ctx, pool, int64(len(impls))); err != nil {
		return fmt.Errorf("cross-check W4: %w", err)
	}
	logf("cross-check W4: %d implementations each changed exactly one row", len(impls))

	// W5: each inserts the same rows into its own app; the stored rows
	// must be identical.
	var wantDigest string
	for _, im := range impls {
		n, err := im.insertBuilds(ctx, im.prepareBuilds(fx.w5RowsFor(im.name())))
		if err != nil || n != int64(len(fx.w5Rows)) {
			return fmt.Errorf("cross-check W5: %s inserted %d rows: %v", im.name(), n, err)
		}
		var digest string
		if err := pool.QueryRow(ctx, `SELECT md5(string_agg(concat_ws(',', source_version, status, created_at, updated_at, started_at, finished_at), '|'
			ORDER BY created_at, source_version)) FROM builds WHERE app_id = $1`, fx.w5Apps[im.name()]).Scan(&digest); err != nil {
			return err
		}
		if wantDigest == "" {
			wantDigest = digest
		} else if digest != wantDigest {
			return fmt.Errorf("cross-check W5: %s stored different rows", im.name())
		}
		if n, err := fx.cleanW5(ctx, pool, im.name()); err != nil || n != int64(len(fx.w5Rows)) {
			return fmt.Errorf("cross-check W5: %s: cleaned %d rows (%v)", im.name(), n, err)
		}
	}
	logf("cross-check W5: %d implementations store the same %d rows", len(impls), len(fx.w5Rows))
	return nil
}
