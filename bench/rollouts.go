package main

// The rollout benchmark (-rollouts): workers claiming and completing
// deployment operations, the per-target state machine's hot path. Three
// implementations run the same two statements per target, a claim
// (ClaimOperations) and a fenced completion (TransitionOperation), in the
// same run, in shuffled order:
//
//   - the deploydb service: ClaimOperations and MoveOperation;
//   - hand-written pgx: the statements' text from queries/, through a pool;
//   - pgbench -M prepared: the same text as a pgbench script (many
//     deployments only, where every client walks its own deployments).
//
// Three experiments: the cost per target of one worker rolling out one
// deployment of 10, 1,000 and 10,000 targets; 1, 8 and 32 workers sharing
// one deployment of 10,000 targets; and many deployments at once, one
// client per stripe of deployments.

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/internal/review"
)

type rolloutOptions struct {
	url         string // a database to use instead of a throwaway cluster
	queries     string // the queries/ directory
	perTarget   []int  // deployment sizes of the cost-per-target experiment
	minTargets  int    // targets per cost-per-target cell (small deployments repeat)
	fleet       int    // targets of the one deployment the workers share
	workers     []int  // workers on that deployment
	conc        []int  // clients of the many-deployments experiment
	opsPerCell  int    // targets completed per many-deployments cell
	perDeploy   int    // targets per deployment there
	rounds      int
	md          string
	smoke, verb bool
}

func parseRolloutFlags(args []string) (*rolloutOptions, error) {
	o := &rolloutOptions{}
	fs := flag.NewFlagSet("bench -rollouts", flag.ContinueOnError)
	fs.Bool("rollouts", true, "run the rollout benchmark (this mode)")
	fs.StringVar(&o.url, "url", "", "database URL to use instead of a throwaway local PostgreSQL (migrated first; rows of an earlier run are deleted)")
	fs.StringVar(&o.queries, "queries", "../queries", "the directory of the project's queries (the statements pgx and pgbench run)")
	perTarget := fs.String("targets", "10,1000,10000", "deployment sizes of the cost-per-target experiment")
	fs.IntVar(&o.minTargets, "min-targets", 2000, "targets per cost-per-target cell: smaller deployments are repeated, one after the other")
	fs.IntVar(&o.fleet, "fleet", 10_000, "targets of the deployment the workers share")
	workers := fs.String("workers", "1,8,32", "workers sharing one deployment")
	conc := fs.String("conc", "1,2,4,8,16", "clients of the many-deployments experiment")
	fs.IntVar(&o.opsPerCell, "ops", 12_800, "targets completed per many-deployments cell (a multiple of -per-deployment times every -conc)")
	fs.IntVar(&o.perDeploy, "per-deployment", 100, "targets per deployment of the many-deployments experiment")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds, each in a new shuffled order")
	fs.StringVar(&o.md, "md", "", "write the Markdown report here")
	fs.BoolVar(&o.smoke, "smoke", false, "tiny sizes, one round, no report: checks that every implementation does the same work")
	fs.BoolVar(&o.verb, "v", false, "print every cell")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if o.smoke {
		*perTarget, o.minTargets, o.fleet, *workers, *conc = "10,200", 200, 400, "1,4", "1,2"
		o.opsPerCell, o.perDeploy, o.rounds = 400, 100, 1
	}
	var err error
	if o.perTarget, err = intList(*perTarget); err != nil {
		return nil, err
	}
	if o.workers, err = intList(*workers); err != nil {
		return nil, err
	}
	if o.conc, err = intList(*conc); err != nil {
		return nil, err
	}
	for _, c := range o.conc {
		if o.opsPerCell%(c*o.perDeploy) != 0 {
			return nil, fmt.Errorf("-ops %d is not a multiple of %d clients times %d targets per deployment", o.opsPerCell, c, o.perDeploy)
		}
	}
	if max(slices.Max(o.perTarget), o.fleet) > deploydb.MaxTargets {
		return nil, fmt.Errorf("a deployment has at most %d targets", deploydb.MaxTargets)
	}
	return o, nil
}

// rolloutStatements are the claim and the fenced completion, read from the
// project's queries with the review's parser, so that they cannot drift
// from what the service runs: sql and params as pgx runs them, text as
// pgbench runs them.
type rolloutStatements struct {
	claim, complete *pgbenchScript
}

var placeholder = regexp.MustCompile(`\$([0-9]+)`)

// pgbenchForm returns q as a pgbench statement: its placeholders become
// :variables named after its parameters (renamed as rename says), without
// its comment lines. The colon inside the advisory-lock key's literal would
// read as a pgbench variable, so the literal is spelled with chr(58), the
// same string.
func pgbenchForm(q *review.Query, rename map[string]string) *pgbenchScript {
	s := &pgbenchScript{name: q.Name, sql: q.Text}
	for _, p := range q.Params {
		if r, ok := rename[p]; ok {
			p = r
		}
		s.params = append(s.params, p)
	}
	var lines []string
	for _, l := range strings.Split(q.Text, "\n") {
		if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "--") {
			lines = append(lines, l)
		}
	}
	text := strings.ReplaceAll(strings.Join(lines, "\n"), "'deploydb:", "'deploydb' || chr(58) || '")
	s.text = placeholder.ReplaceAllStringFunc(text, func(m string) string {
		n, _ := strconv.Atoi(m[1:])
		return ":" + s.params[n-1]
	})
	return s
}

func loadRolloutStatements(dir string) (*rolloutStatements, error) {
	const file = "deployment_operations.sql"
	data, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return nil, err
	}
	st := &rolloutStatements{}
	for _, q := range review.ParseQueries(file, data) {
		if q.Err != nil {
			return nil, fmt.Errorf("%s %s: %w", file, q.Name, q.Err)
		}
		switch q.Name {
		case "ClaimOperations":
			st.claim = pgbenchForm(q, nil)
		case "TransitionOperation":
			// The completion carries the claimed row's id and token, which
			// the pgbench script stores with \gset c_.
			st.complete = pgbenchForm(q, map[string]string{"id": "c_id", "token": "c_lease_token"})
		}
	}
	if st.claim == nil || st.complete == nil {
		return nil, fmt.Errorf("%s lacks ClaimOperations or TransitionOperation", file)
	}
	return st, nil
}

// rolloutVars are the statements' fixed parameters, as pgbench -D values.
func rolloutVars(clients, perDeploy int) map[string]string {
	return map[string]string{
		"worker": "bench", "lease": "60 seconds", "max_rows": "1",
		"new_state": "completed", "last_error": "-", // unused: the move is not to failed (pgbench refuses an empty -D)
		"clients": strconv.Itoa(clients), "per_deployment": strconv.Itoa(perDeploy), "n": "0",
	}
}

// pgbenchText is the many-deployments script: client k completes targets
// of deployments k, k+clients, k+2*clients, ... in order, one claim and
// one completion per transaction (pgbench variables live as long as the
// client, so n counts its transactions).
func (st *rolloutStatements) pgbenchText() string {
	return `\set d :client_id + :clients * (:n / :per_deployment)
\set target :d * :per_deployment + :n % :per_deployment
\set n :n + 1
` + st.claim.text + `
\gset c_
` + st.complete.text + ";\n"
}

// errNothingClaimable: the claim found nothing to take on the target (for
// example, while another worker's claim that starts the deployment has not
// committed yet).
var errNothingClaimable = errors.New("nothing claimable")

// rolloutImpl claims one operation on a target and completes it.
type rolloutImpl interface {
	name() string
	claimComplete(ctx context.Context, target string) error
}

type serviceRollout struct{ svc *deploydb.Service }

func (serviceRollout) name() string { return "deploydb" }

func (s serviceRollout) claimComplete(ctx context.Context, target string) error {
	ops, err := s.svc.ClaimOperations(ctx, deploydb.ClaimParams{Target: target, Worker: "bench"})
	if errors.Is(err, deploydb.ErrNotFound) {
		return errNothingClaimable
	}
	if err != nil {
		return err
	}
	_, changed, err := s.svc.MoveOperation(ctx, deploydb.MoveParams{Lease: ops[0].Lease(), To: deploydb.OperationCompleted})
	if err == nil && !changed {
		err = errors.New("the completion changed nothing")
	}
	return err
}

// pgxRollout runs the statements through a pool, as hand-written pgx
// would: the arguments are laid out once, and each call fills in its own.
type pgxRollout struct {
	pool                    *pgxpool.Pool
	st                      *rolloutStatements
	claimArgs, completeArgs []any
	target, id, token       int // positions of the per-call arguments
}

func newPgxRollout(pool *pgxpool.Pool, st *rolloutStatements) (pgxRollout, error) {
	vals := map[string]any{
		"worker": "bench", "lease": pgtype.Interval{Microseconds: 60e6, Valid: true}, "max_rows": int64(1),
		"new_state": "completed", "last_error": nil, "target": "", "c_id": int64(0), "c_lease_token": int64(0),
	}
	p := pgxRollout{pool: pool, st: st}
	var err error
	if p.claimArgs, err = st.claim.args(vals); err != nil {
		return p, err
	}
	if p.completeArgs, err = st.complete.args(vals); err != nil {
		return p, err
	}
	p.target = slices.Index(st.claim.params, "target")
	p.id, p.token = slices.Index(st.complete.params, "c_id"), slices.Index(st.complete.params, "c_lease_token")
	if p.target < 0 || p.id < 0 || p.token < 0 {
		return p, fmt.Errorf("the claim or the completion lacks its target, id or token parameter")
	}
	return p, nil
}

func (pgxRollout) name() string { return "pgx" }

func (p pgxRollout) claimComplete(ctx context.Context, target string) error {
	args := slices.Clone(p.claimArgs)
	args[p.target] = target
	rows, err := p.pool.Query(ctx, p.st.claim.sql, args...)
	if err != nil {
		return err
	}
	var id, token int64
	found := false
	for rows.Next() {
		for i, f := range rows.FieldDescriptions() {
			if v := rows.RawValues()[i]; (f.Name == "id" || f.Name == "lease_token") && f.Format == 1 && len(v) == 8 {
				if f.Name == "id" {
					id = int64(binary.BigEndian.Uint64(v))
				} else {
					token = int64(binary.BigEndian.Uint64(v))
				}
			}
		}
		found = true
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if !found {
		return errNothingClaimable
	}
	args = slices.Clone(p.completeArgs)
	args[p.id], args[p.token] = id, token
	tag, err := p.pool.Exec(ctx, p.st.complete.sql, args...)
	if err == nil && tag.RowsAffected() != 1 {
		err = fmt.Errorf("completion of operation %d changed %d rows", id, tag.RowsAffected())
	}
	return err
}

// rolloutBench holds the run's server, its apps and the results.
type rolloutBench struct {
	o     *rolloutOptions
	url   string
	pool  *pgxpool.Pool // maintenance and checks
	svc   *deploydb.Service
	st    *rolloutStatements
	impls []rolloutImpl
	apps  []appBuild

	perTarget []rolloutSample // experiment 1
	shared    []rolloutSample // experiment 2
	many      []rolloutSample // experiment 3
}

type appBuild struct {
	app   deploydb.AppID
	build deploydb.BuildID
}

// rolloutSample is one timed cell.
type rolloutSample struct {
	impl    string
	size    int // targets per deployment, workers or clients
	targets int // targets completed
	elapsed time.Duration
	round   int
	retries int64 // claims that found nothing and were tried again
	// clientCPU is the CPU time (user and system) of the client: this
	// process for the Go implementations, pgbench for pgbench.
	clientCPU time.Duration
}

// transitions per second: a claim and a completion per target.
func (s rolloutSample) transitionsPerSec() float64 {
	return 2 * float64(s.targets) / s.elapsed.Seconds()
}

func (s rolloutSample) perTarget() time.Duration { return s.elapsed / time.Duration(s.targets) }

func runRollouts(ctx context.Context, args []string) error {
	o, err := parseRolloutFlags(args)
	if err != nil {
		return err
	}
	env := describeMachine()
	env.loadStart, env.cpuStart, env.started = loadAverage(), readCPUStat(), time.Now()
	logf("load average at start: %s", env.loadStart)
	st, err := loadRolloutStatements(o.queries)
	if err != nil {
		return err
	}
	url, closeServer, err := benchDatabase(ctx, o.url, "deploydb_rollouts")
	if err != nil {
		return err
	}
	defer closeServer()
	maxConns := max(slices.Max(o.workers), slices.Max(o.conc)) + 2
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return err
	}
	cfg.MaxConns = int32(maxConns)
	open := func() (*pgxpool.Pool, error) { return pgxpool.NewWithConfig(ctx, cfg.Copy()) }
	pool, err := open()
	if err != nil {
		return err
	}
	defer pool.Close()
	env.describeServer(ctx, pool)
	env.pgbench = pgbenchVersion()
	if _, err := pool.Exec(ctx, `DELETE FROM apps WHERE name LIKE 'bench-rollout-%'`); err != nil {
		return err
	}
	svcPool, err := open()
	if err != nil {
		return err
	}
	defer svcPool.Close()
	rawPool, err := open()
	if err != nil {
		return err
	}
	defer rawPool.Close()
	for _, p := range []*pgxpool.Pool{svcPool, rawPool} {
		if err := warmPgx(ctx, p, maxConns); err != nil {
			return err
		}
	}
	raw, err := newPgxRollout(rawPool, st)
	if err != nil {
		return err
	}
	b := &rolloutBench{o: o, url: url, pool: pool, svc: deploydb.New(pool), st: st,
		impls: []rolloutImpl{serviceRollout{deploydb.New(svcPool)}, raw}}

	apps := max(o.opsPerCell/o.perDeploy, (o.minTargets+slices.Min(o.perTarget)-1)/slices.Min(o.perTarget), 1)
	logf("creating %d apps with a succeeded build each", apps)
	if err := b.createApps(ctx, apps); err != nil {
		return err
	}

	// Warm-up: one cell of each experiment and implementation, not kept.
	logf("warm-up")
	if err := b.round(ctx, 0, rand.New(rand.NewPCG(1, 1))); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	b.perTarget, b.shared, b.many = nil, nil, nil
	shuffle := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 11))
	for round := 1; round <= o.rounds; round++ {
		logf("round %d of %d", round, o.rounds)
		if err := b.round(ctx, round, shuffle); err != nil {
			return err
		}
	}
	env.loadEnd, env.cpuEnd, env.finished = loadAverage(), readCPUStat(), time.Now()
	logf("load average at end: %s", env.loadEnd)
	if o.smoke {
		logf("smoke: %d cells ran; the service, pgx and pgbench completed every target they were given", len(b.perTarget)+len(b.shared)+len(b.many))
		return nil
	}
	md := b.markdown(env)
	if o.md != "" {
		if err := os.WriteFile(o.md, []byte(md), 0o644); err != nil {
			return err
		}
	}
	fmt.Print(b.summary())
	return nil
}

func (b *rolloutBench) createApps(ctx context.Context, n int) error {
	for i := range n {
		app, err := b.svc.CreateApp(ctx, deploydb.CreateAppParams{Name: fmt.Sprintf("bench-rollout-%d", i)})
		if err != nil {
			return err
		}
		bld, _, err := b.svc.CreateBuild(ctx, deploydb.CreateBuildParams{AppID: app.ID, SourceVersion: "bench"})
		if err != nil {
			return err
		}
		for _, s := range []deploydb.BuildStatus{deploydb.BuildInProgress, deploydb.BuildSucceeded} {
			if _, _, err := b.svc.UpdateBuildStatus(ctx, bld.ID, s); err != nil {
				return err
			}
		}
		b.apps = append(b.apps, appBuild{app.ID, bld.ID})
	}
	return nil
}

// deploy creates a deployment of app i with the given targets.
func (b *rolloutBench) deploy(ctx context.Context, i int, targets []string) (deploydb.DeploymentID, error) {
	d, _, _, err := b.svc.CreateDeploymentWithTargets(ctx, deploydb.CreateDeploymentWithTargetsParams{
		AppID: b.apps[i].app, BuildID: b.apps[i].build, Environment: "production", Targets: targets})
	return d.ID, err
}

// finished checks that every operation of the deployments completed and
// that each deployment reads deployed with the counts to match, then
// vacuums, so that every cell starts from similar tables.
func (b *rolloutBench) finished(ctx context.Context, ids []deploydb.DeploymentID, targets int) error {
	var ops, completed, deployed int64
	err := b.pool.QueryRow(ctx, `
		SELECT (SELECT count(*) FROM deployment_operations WHERE deployment_id = ANY($1)),
		       (SELECT count(*) FROM deployment_operations WHERE deployment_id = ANY($1) AND state = 'completed'),
		       (SELECT count(*) FROM deployments WHERE id = ANY($1) AND status = 'deployed'
		          AND ops_completed = (SELECT count(*) FROM deployment_operations o WHERE o.deployment_id = deployments.id))`,
		ids).Scan(&ops, &completed, &deployed)
	if err != nil {
		return err
	}
	if ops != int64(targets) || completed != ops || deployed != int64(len(ids)) {
		return fmt.Errorf("%d operations (want %d), %d completed, %d of %d deployments deployed with matching counts",
			ops, targets, completed, deployed, len(ids))
	}
	_, err = b.pool.Exec(ctx, "VACUUM (ANALYZE) deployment_operations, deployments")
	return err
}

func targetNames(prefix string, from, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = prefix + strconv.Itoa(from+i)
	}
	return out
}

// round runs every cell once, in shuffled order.
func (b *rolloutBench) round(ctx context.Context, round int, shuffle *rand.Rand) error {
	type cell struct {
		exp  int
		impl string
		size int
	}
	var cells []cell
	for _, im := range b.impls {
		for _, n := range b.o.perTarget {
			cells = append(cells, cell{1, im.name(), n})
		}
		for _, w := range b.o.workers {
			cells = append(cells, cell{2, im.name(), w})
		}
		for _, c := range b.o.conc {
			cells = append(cells, cell{3, im.name(), c})
		}
	}
	for _, c := range b.o.conc {
		cells = append(cells, cell{3, "pgbench", c})
	}
	shuffle.Shuffle(len(cells), func(i, j int) { cells[i], cells[j] = cells[j], cells[i] })
	for _, c := range cells {
		var im rolloutImpl
		for _, x := range b.impls {
			if x.name() == c.impl {
				im = x
			}
		}
		var s rolloutSample
		var err error
		switch c.exp {
		case 1:
			s, err = b.costPerTarget(ctx, im, c.size)
		case 2:
			s, err = b.sharedDeployment(ctx, im, c.size)
		case 3:
			s, err = b.manyDeployments(ctx, im, c.size)
		}
		if err != nil {
			return fmt.Errorf("experiment %d, %s, %d: %w", c.exp, c.impl, c.size, err)
		}
		s.round = round
		if b.o.verb {
			logf("    exp %d %-9s %6d  %6d targets in %-10s %7.1f µs/target %8.0f transitions/s %d retries, client CPU %.0f µs/target",
				c.exp, s.impl, s.size, s.targets, s.elapsed.Round(time.Microsecond), float64(s.perTarget())/1e3, s.transitionsPerSec(), s.retries,
				float64(s.clientCPU)/float64(s.targets)/1e3)
		}
		switch c.exp {
		case 1:
			b.perTarget = append(b.perTarget, s)
		case 2:
			b.shared = append(b.shared, s)
		case 3:
			b.many = append(b.many, s)
		}
	}
	return nil
}

// costPerTarget: one worker rolls out deployments of n targets, one after
// the other, until minTargets targets are done.
func (b *rolloutBench) costPerTarget(ctx context.Context, im rolloutImpl, n int) (rolloutSample, error) {
	reps := max(1, b.o.minTargets/n)
	var ids []deploydb.DeploymentID
	for r := range reps {
		id, err := b.deploy(ctx, r, targetNames("t", 0, n))
		if err != nil {
			return rolloutSample{}, err
		}
		ids = append(ids, id)
	}
	names := targetNames("t", 0, n)
	start := time.Now()
	// The claim takes the oldest pending operation of the target: the
	// deployments complete in the order they were created.
	for range reps {
		for _, t := range names {
			if err := im.claimComplete(ctx, t); err != nil {
				return rolloutSample{}, err
			}
		}
	}
	s := rolloutSample{impl: im.name(), size: n, targets: reps * n, elapsed: time.Since(start)}
	return s, b.finished(ctx, ids, reps*n)
}

// sharedDeployment: w workers share one deployment of fleet targets,
// worker k taking targets k, k+w, k+2w, ...
func (b *rolloutBench) sharedDeployment(ctx context.Context, im rolloutImpl, w int) (rolloutSample, error) {
	names := targetNames("f", 0, b.o.fleet)
	id, err := b.deploy(ctx, 0, names)
	if err != nil {
		return rolloutSample{}, err
	}
	var retries atomic.Int64
	start := time.Now()
	err = parallel(w, func(k int) error {
		for i := k; i < len(names); i += w {
			// A worker whose claim finds nothing waits a little and tries
			// again, as a worker loop does: until the first claim that
			// starts the deployment commits, the others pass it over.
			err := im.claimComplete(ctx, names[i])
			for ; errors.Is(err, errNothingClaimable) && retries.Load() < 100_000; err = im.claimComplete(ctx, names[i]) {
				retries.Add(1)
				time.Sleep(time.Millisecond)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	s := rolloutSample{impl: im.name(), size: w, targets: len(names), elapsed: time.Since(start), retries: retries.Load()}
	if err != nil {
		return s, err
	}
	return s, b.finished(ctx, []deploydb.DeploymentID{id}, len(names))
}

// manyDeployments: opsPerCell/perDeploy deployments of perDeploy targets,
// each of its own app; client k completes deployments k, k+c, k+2c, ...
// target by target. The targets are numbers, so that pgbench can compute
// them.
func (b *rolloutBench) manyDeployments(ctx context.Context, im rolloutImpl, c int) (rolloutSample, error) {
	nd, per := b.o.opsPerCell/b.o.perDeploy, b.o.perDeploy
	ids := make([]deploydb.DeploymentID, nd)
	for d := range nd {
		id, err := b.deploy(ctx, d, targetNames("", d*per, per))
		if err != nil {
			return rolloutSample{}, err
		}
		ids[d] = id
	}
	s := rolloutSample{size: c, targets: b.o.opsPerCell}
	if im == nil {
		s.impl = "pgbench"
		script := &pgbenchScript{name: "rollout.sql", text: b.st.pgbenchText()}
		cpu0 := cpuTime(syscall.RUSAGE_CHILDREN)
		tps, _, n, err := runPgbench(ctx, b.url, script, rolloutVars(c, per), c, 0, b.o.opsPerCell/c)
		s.clientCPU = cpuTime(syscall.RUSAGE_CHILDREN) - cpu0
		if err != nil {
			return s, err
		}
		if n != int64(b.o.opsPerCell) {
			return s, fmt.Errorf("pgbench ran %d transactions, want %d", n, b.o.opsPerCell)
		}
		s.elapsed = time.Duration(float64(n) / tps * float64(time.Second))
	} else {
		s.impl = im.name()
		x := b.o.opsPerCell / c
		cpu0 := cpuTime(syscall.RUSAGE_SELF)
		start := time.Now()
		err := parallel(c, func(k int) error {
			for n := range x {
				d := k + c*(n/per)
				if err := im.claimComplete(ctx, strconv.Itoa(d*per+n%per)); err != nil {
					return err
				}
			}
			return nil
		})
		s.elapsed = time.Since(start)
		s.clientCPU = cpuTime(syscall.RUSAGE_SELF) - cpu0
		if err != nil {
			return s, err
		}
	}
	return s, b.finished(ctx, ids, b.o.opsPerCell)
}

// cpuTime returns the user and system CPU time of this process (who is
// RUSAGE_SELF) or of its waited-for children (RUSAGE_CHILDREN).
func cpuTime(who int) time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(who, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// parallel runs fn(0..n-1) on n goroutines and returns the first error.
func parallel(n int, fn func(k int) error) error {
	var wg sync.WaitGroup
	errs := make([]error, n)
	for k := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[k] = fn(k)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// --- report ---

// median of the cells of one implementation and size.
func medianOf(samples []rolloutSample, impl string, size int) (rolloutSample, bool) {
	var xs []rolloutSample
	for _, s := range samples {
		if s.impl == impl && s.size == size {
			xs = append(xs, s)
		}
	}
	if len(xs) == 0 {
		return rolloutSample{}, false
	}
	sort.Slice(xs, func(i, j int) bool { return xs[i].perTarget() < xs[j].perTarget() })
	return xs[len(xs)/2], true
}

func (s rolloutSample) spread(samples []rolloutSample) string {
	lo, hi := time.Duration(1<<62), time.Duration(0)
	for _, x := range samples {
		if x.impl == s.impl && x.size == s.size {
			lo, hi = min(lo, x.perTarget()), max(hi, x.perTarget())
		}
	}
	return fmt.Sprintf("%.0f–%.0f", float64(lo)/1e3, float64(hi)/1e3)
}

type rolloutGoal struct {
	name, value string
	met         bool
}

func (b *rolloutBench) goals() []rolloutGoal {
	var g []rolloutGoal
	lo, hi := slices.Min(b.o.perTarget), slices.Max(b.o.perTarget)
	if a, ok := medianOf(b.perTarget, "deploydb", lo); ok {
		if z, ok := medianOf(b.perTarget, "deploydb", hi); ok {
			r := float64(z.perTarget()) / float64(a.perTarget())
			g = append(g, rolloutGoal{fmt.Sprintf("cost per target at %s targets ≤ 1.2× the cost at %s", thousands(float64(hi)), thousands(float64(lo))),
				fmt.Sprintf("%.2f× (%.0f µs vs %.0f µs)", r, float64(z.perTarget())/1e3, float64(a.perTarget())/1e3), r <= 1.2})
		}
	}
	if one, ok := medianOf(b.shared, "deploydb", 1); ok {
		if eight, ok := medianOf(b.shared, "deploydb", 8); ok {
			r := eight.transitionsPerSec() / one.transitionsPerSec()
			g = append(g, rolloutGoal{"8 workers on one deployment ≥ 3× one worker",
				fmt.Sprintf("%.2f× (%s vs %s targets/s)", r, thousands(eight.transitionsPerSec()/2), thousands(one.transitionsPerSec()/2)), r >= 3})
		}
	}
	var best, bestPg rolloutSample
	for _, c := range b.o.conc {
		if s, ok := medianOf(b.many, "deploydb", c); ok && (best.targets == 0 || s.transitionsPerSec() > best.transitionsPerSec()) {
			best = s
		}
		if s, ok := medianOf(b.many, "pgbench", c); ok && (bestPg.targets == 0 || s.transitionsPerSec() > bestPg.transitionsPerSec()) {
			bestPg = s
		}
	}
	if best.targets > 0 {
		g = append(g, rolloutGoal{"many deployments: ≥ 5,000 transitions/s",
			fmt.Sprintf("%s transitions/s (%d clients)", thousands(best.transitionsPerSec()), best.size), best.transitionsPerSec() >= 5000})
	}
	if best.targets > 0 && bestPg.targets > 0 {
		r := best.transitionsPerSec() / bestPg.transitionsPerSec()
		g = append(g, rolloutGoal{"many deployments: ≥ 0.8× pgbench running the same statements (best of each)",
			fmt.Sprintf("%.2f× (%s vs %s transitions/s at %d and %d clients)", r, thousands(best.transitionsPerSec()),
				thousands(bestPg.transitionsPerSec()), best.size, bestPg.size), r >= 0.8})
	}
	return g
}

func (b *rolloutBench) summary() string {
	var sb strings.Builder
	for _, g := range b.goals() {
		fmt.Fprintf(&sb, "%-80s %s %s\n", g.name, g.value, mark(g.met))
	}
	return sb.String()
}

func (b *rolloutBench) markdown(e *environment) string {
	var sb strings.Builder
	p := func(f string, a ...any) { fmt.Fprintf(&sb, f, a...) }
	p("# Rollout benchmarks\n\n")
	p("Generated by `make bench-rollouts` (bench/, `go run . -rollouts`) on %s; do not edit by hand — the analysis below the tables comes from bench/rollouts-analysis.md.\n\n", e.started.UTC().Format("2006-01-02 15:04 MST"))
	p("Workers claim one operation of a target (ClaimOperations) and complete it with the claim's fencing token (TransitionOperation): two statements, two transitions, per target. ")
	p("The deploydb service (ClaimOperations and MoveOperation), hand-written pgx and pgbench `-M prepared` run the same two statements, read from queries/deployment_operations.sql, in the same run, in shuffled order, %d rounds; each figure is the median round (the range of all rounds in brackets). ", b.o.rounds)
	p("After every cell the run checks that every operation it was given is completed and that every deployment reads deployed with counts to match.\n\n")
	p("## Goals\n\n| goal | result | |\n|---|---|---|\n")
	for _, g := range b.goals() {
		p("| %s | %s | %s |\n", g.name, g.value, mark(g.met))
	}
	p("\n## Machine and server\n\n")
	e.machineMarkdown(p)
	p("- The database holds only the benchmark's own rows: %d apps, and the deployments of earlier cells (completed) as the run goes on.\n", len(b.apps))

	p("\n## Cost per target: one worker, one deployment of n targets\n\n")
	p("A worker claims and completes every target of a deployment, in order; deployments smaller than %s targets are repeated (each of its own app) until %s targets are done. Time per target (µs), median of the rounds [range]:\n\n",
		thousands(float64(b.o.minTargets)), thousands(float64(b.o.minTargets)))
	b.table(p, b.perTarget, b.o.perTarget, "targets", func(s rolloutSample) string {
		return fmt.Sprintf("%.0f [%s]", float64(s.perTarget())/1e3, s.spread(b.perTarget))
	})

	p("\n## Workers sharing one deployment of %s targets\n\n", thousands(float64(b.o.fleet)))
	p("w workers share the targets (worker k takes k, k+w, k+2w, ...); targets per second from the first claim to the last completion:\n\n")
	b.table(p, b.shared, b.o.workers, "workers", func(s rolloutSample) string {
		return fmt.Sprintf("%s [%s µs/target]", thousands(s.transitionsPerSec()/2), s.spread(b.shared))
	})

	p("\n## Many deployments at once\n\n")
	p("%s deployments of %d targets, each of its own app; client k completes deployments k, k+c, k+2c, ... target by target (%s targets per cell). Transitions per second (two per target):\n\n",
		thousands(float64(b.o.opsPerCell/b.o.perDeploy)), b.o.perDeploy, thousands(float64(b.o.opsPerCell)))
	b.table(p, b.many, b.o.conc, "clients", func(s rolloutSample) string {
		return fmt.Sprintf("%s [%s µs/target]", thousands(s.transitionsPerSec()), s.spread(b.many))
	})
	p("\nThe client's CPU time per target (µs, user and system; the Go process, or pgbench), in the same median cells:\n\n")
	b.table(p, b.many, b.o.conc, "clients", func(s rolloutSample) string {
		return fmt.Sprintf("%.0f", float64(s.clientCPU)/float64(s.targets)/1e3)
	})
	p("\nRatios to pgbench at the same number of clients (deploydb / pgbench, pgx / pgbench):\n\n| clients | deploydb | pgx |\n|---|---|---|\n")
	for _, c := range b.o.conc {
		pg, ok := medianOf(b.many, "pgbench", c)
		if !ok {
			continue
		}
		d, _ := medianOf(b.many, "deploydb", c)
		x, _ := medianOf(b.many, "pgx", c)
		p("| %d | %.2f | %.2f |\n", c, d.transitionsPerSec()/pg.transitionsPerSec(), x.transitionsPerSec()/pg.transitionsPerSec())
	}
	if a, err := os.ReadFile("rollouts-analysis.md"); err == nil {
		p("\n%s", a)
	}
	return sb.String()
}

var rolloutLabels = map[string]string{"deploydb": "deploydb service", "pgx": "hand-written pgx", "pgbench": "pgbench -M prepared"}

// table prints one row per implementation and one column per size.
func (b *rolloutBench) table(p func(string, ...any), samples []rolloutSample, sizes []int, what string, cell func(rolloutSample) string) {
	p("| %s |", what)
	for _, n := range sizes {
		p(" %s |", thousands(float64(n)))
	}
	p("\n|---|")
	for range sizes {
		p("---|")
	}
	p("\n")
	for _, im := range []string{"deploydb", "pgx", "pgbench"} {
		if _, ok := medianOf(samples, im, sizes[0]); !ok {
			continue
		}
		p("| %s |", rolloutLabels[im])
		for _, n := range sizes {
			if s, ok := medianOf(samples, im, n); ok {
				p(" %s |", cell(s))
			} else {
				p(" |")
			}
		}
		p("\n")
	}
}
