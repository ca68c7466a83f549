package seed

import (
	"math/bits"
	"sort"
	"strconv"
	"time"
)

var (
	appColumns        = []string{"id", "name", "created_at", "updated_at"}
	buildColumns      = []string{"id", "app_id", "source_version", "status", "created_at", "updated_at", "started_at", "finished_at"}
	deploymentColumns = []string{"id", "app_id", "build_id", "environment", "status", "created_at", "updated_at", "started_at", "finished_at"}
	operationColumns  = []string{"id", "deployment_id", "target", "state", "attempt", "last_error", "claimed_by", "claimed_at", "started_at", "finished_at", "created_at", "updated_at"}
)

// Stream identifiers: each table's rows draw from their own sequences.
const (
	streamApp uint64 = iota + 1
	streamBuild
	streamDeploymentPlan
	streamDeploymentTimes
	streamOperation
)

// rng is splitmix64 started from a hash of (seed, stream, id): a row's
// random numbers depend on nothing else.
type rng struct{ s uint64 }

func newRNG(seed, stream uint64, id int64) rng {
	r := rng{s: seed*0x9E3779B97F4A7C15 ^ stream*0xC2B2AE3D27D4EB4F ^ uint64(id)*0x165667B19E3779F9}
	r.next()
	return r
}

func (r *rng) next() uint64 {
	r.s += 0x9E3779B97F4A7C15
	z := r.s
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// intn returns a number in [0, n).
func (r *rng) intn(n int64) int64 {
	hi, _ := bits.Mul64(r.next(), uint64(n))
	return int64(hi)
}

// between returns a number in [lo, hi].
func (r *rng) between(lo, hi int64) int64 { return lo + r.intn(hi-lo+1) }

// float returns a number in [0, 1).
func (r *rng) float() float64 { return float64(r.next()>>11) / (1 << 53) }

const (
	second = int64(time.Second / time.Microsecond)
	minute = 60 * second
)

// Build and deployment status codes, in the plan arrays.
const (
	stSucceeded uint8 = iota // builds: succeeded; deployments: deployed
	stFailed
	stCanceled
	stPending
	stInProgress
)

var (
	buildStatus      = [...]string{"succeeded", "failed", "canceled", "pending", "in_progress"}
	deploymentStatus = [...]string{"deployed", "failed", "canceled", "pending", "in_progress"}
)

// statusMix draws the ≈80/10/5/5 mix; active rows are pending for now
// (deployments) or half pending, half in progress (builds).
func statusMix(r *rng) uint8 {
	switch u := r.float(); {
	case u < 0.80:
		return stSucceeded
	case u < 0.90:
		return stFailed
	case u < 0.95:
		return stCanceled
	}
	return stPending
}

var appWords = []string{
	"checkout", "search", "billing", "auth", "catalog", "payments", "inventory", "shipping",
	"notifications", "profile", "reviews", "cart", "gateway", "ledger", "reports", "media",
	"pricing", "orders", "accounts", "feeds", "recommender", "analytics", "scheduler", "mailer",
}

// Targets operations are rolled out to.
var targets = []string{
	"us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-south-1", "ap-southeast-2",
	"sa-east-1", "ca-central-1", "k8s-prod-a", "k8s-prod-b", "edge.fra", "edge.sin",
}

type generator struct {
	cfg   Config
	epoch int64 // Epoch in µs
	span  int64 // Span in µs

	// Per-app succeeded builds, ids ascending (and so created_at
	// ascending): ids[first[a]:first[a+1]] for app a.
	succFirst []int32
	succIDs   []int64

	// Deployment plan, index id-1.
	depApp   []int32
	depBuild []int64
	depEnv   []uint8
	depSt    []uint8
	depAt    []int64 // created_at, µs
}

func newGenerator(cfg Config) *generator {
	g := &generator{cfg: cfg, epoch: Epoch.UnixMicro(), span: int64(Span / time.Microsecond)}
	return g
}

func usec(t int64) time.Time { return time.UnixMicro(t).UTC() }

// pickApp draws the app of a build or deployment.
func (g *generator) pickApp(r *rng) int64 {
	if g.cfg.Apps == 1 || r.float() < HotShare {
		return HotAppID
	}
	return 2 + r.intn(int64(g.cfg.Apps-1))
}

// --- apps ---

func (g *generator) appRow(id int64, v []any) {
	r := newRNG(g.cfg.Seed, streamApp, id)
	at := g.epoch - 30*24*60*minute + r.intn(29*24*60*minute)
	v[0] = id
	v[1] = appWords[(id-1)%int64(len(appWords))] + "-" + strconv.FormatInt(id, 10)
	v[2] = usec(at)
	v[3] = usec(at)
}

// --- builds ---

// buildCore is the part of a build that deployments depend on.
func (g *generator) buildCore(id int64) (r rng, app int64, st uint8, at int64) {
	r = newRNG(g.cfg.Seed, streamBuild, id)
	step := g.span / int64(g.cfg.Builds)
	at = g.epoch + (id-1)*step + r.intn(max(step, 1))
	if id <= int64(g.cfg.Apps) {
		// The first build of every app, so that every app can deploy.
		return r, id, stSucceeded, at
	}
	app = g.pickApp(&r)
	st = statusMix(&r)
	if st == stPending && r.float() < 0.5 {
		st = stInProgress
	}
	return r, app, st, at
}

func (g *generator) buildRow(id int64, v []any) {
	r, app, st, at := g.buildCore(id)
	var sv [40]byte
	const hex = "0123456789abcdef"
	for i := 0; i < 40; i += 16 {
		x := r.next()
		for j := i; j < min(i+16, 40); j++ {
			sv[j] = hex[x&15]
			x >>= 4
		}
	}
	var started, finished any
	updated := at
	switch st {
	case stSucceeded, stFailed, stInProgress:
		s := at + r.between(5*second, 65*second)
		started, updated = usec(s), s
		if st != stInProgress {
			f := s + r.between(1*minute, 15*minute)
			finished, updated = usec(f), f
		}
	case stCanceled:
		f := at + r.between(10*second, 10*minute)
		if r.float() < 0.5 {
			s := at + r.between(5*second, 65*second)
			started = usec(s)
			f = s + r.between(10*second, 5*minute)
		}
		finished, updated = usec(f), f
	}
	v[0] = id
	v[1] = app
	v[2] = string(sv[:])
	v[3] = buildStatus[st]
	v[4] = usec(at)
	v[5] = usec(updated)
	v[6] = started
	v[7] = finished
}

// --- deployments ---

// planDeployments decides, for every deployment, its app, environment,
// status, created_at and build. It runs once, before the deployments are
// copied.
func (g *generator) planDeployments() {
	apps := g.cfg.Apps
	// Succeeded builds per app (counting sort by app, ids ascending).
	g.succFirst = make([]int32, apps+2)
	buildApp := make([]int32, g.cfg.Builds)
	buildAt := make([]int64, g.cfg.Builds)
	for id := int64(1); id <= int64(g.cfg.Builds); id++ {
		_, app, st, at := g.buildCore(id)
		buildAt[id-1] = at
		if st == stSucceeded {
			buildApp[id-1] = int32(app)
			g.succFirst[app+1]++
		}
	}
	for a := 1; a <= apps+1; a++ {
		g.succFirst[a] += g.succFirst[a-1]
	}
	g.succIDs = make([]int64, g.succFirst[apps+1])
	fill := append([]int32(nil), g.succFirst...)
	for id := int64(1); id <= int64(g.cfg.Builds); id++ {
		if a := buildApp[id-1]; a != 0 {
			g.succIDs[fill[a]] = id
			fill[a]++
		}
	}

	n := g.cfg.Deployments
	g.depApp, g.depBuild = make([]int32, n), make([]int64, n)
	g.depEnv, g.depSt, g.depAt = make([]uint8, n), make([]uint8, n), make([]int64, n)
	step := g.span / int64(max(n, 1))
	for i := 0; i < n; i++ {
		id := int64(i + 1)
		r := newRNG(g.cfg.Seed, streamDeploymentPlan, id)
		app := g.pickApp(&r)
		var env uint8
		switch u := r.float(); {
		case u < 0.50:
			env = 0
		case u < 0.85:
			env = 1
		default:
			env = 2
		}
		st := statusMix(&r)
		at := g.epoch + (id-1)*step + r.intn(max(step, 1))
		builds := g.succIDs[g.succFirst[app]:g.succFirst[app+1]]
		if len(builds) == 0 {
			app = HotAppID // build 1 is the hot app's, and succeeded
			builds = g.succIDs[g.succFirst[app]:g.succFirst[app+1]]
		}
		// The newest succeeded build created at least a minute before,
		// or one of the two before it.
		k := sort.Search(len(builds), func(k int) bool { return buildAt[builds[k]-1] > at-minute }) - 1
		if k < 0 {
			k = 0
			at = buildAt[builds[0]-1] + r.between(2*minute, 30*minute)
		} else {
			k -= int(r.intn(int64(min(3, k+1))))
		}
		g.depApp[i], g.depEnv[i], g.depSt[i], g.depAt[i], g.depBuild[i] = int32(app), env, st, at, builds[k]
	}
	// The newest active deployment of each app and environment is in
	// progress; the partial unique index allows no second one.
	seen := make(map[int64]bool)
	for i := n - 1; i >= 0; i-- {
		if g.depSt[i] != stPending {
			continue
		}
		key := int64(g.depApp[i])*int64(len(Environments)) + int64(g.depEnv[i])
		if !seen[key] {
			seen[key] = true
			g.depSt[i] = stInProgress
		}
	}
}

// depTimes returns a deployment's started_at and finished_at (0 for NULL)
// and updated_at.
func (g *generator) depTimes(id int64) (started, finished, updated int64) {
	i := id - 1
	at, st := g.depAt[i], g.depSt[i]
	r := newRNG(g.cfg.Seed, streamDeploymentTimes, id)
	switch st {
	case stSucceeded, stFailed, stInProgress:
		started = at + r.between(10*second, 60*second)
		if st != stInProgress {
			finished = started + r.between(30*second, 20*minute)
		}
	case stCanceled:
		finished = at + r.between(1*minute, 60*minute)
		if r.float() < 0.5 {
			started = at + r.between(10*second, 60*second)
			finished = started + r.between(30*second, 10*minute)
		}
	}
	return started, finished, max(at, started, finished)
}

func nullable(t int64) any {
	if t == 0 {
		return nil
	}
	return usec(t)
}

func (g *generator) deploymentRow(id int64, v []any) {
	i := id - 1
	started, finished, updated := g.depTimes(id)
	v[0] = id
	v[1] = int64(g.depApp[i])
	v[2] = g.depBuild[i]
	v[3] = Environments[g.depEnv[i]]
	v[4] = deploymentStatus[g.depSt[i]]
	v[5] = usec(g.depAt[i])
	v[6] = usec(updated)
	v[7] = nullable(started)
	v[8] = nullable(finished)
}

// --- operations ---

// opDeployment returns the deployment that operation group k (0-based)
// belongs to: the groups are spread evenly over the deployment ids.
func (g *generator) opDeployment(k int64) int64 {
	groups := int64(g.cfg.Operations / TargetsPerDeployment)
	return 1 + k*int64(g.cfg.Deployments)/groups
}

// operationRow writes operation id: slot (id-1)%3 of group (id-1)/3. The
// states and timestamps reproduce the deployment's stored status,
// started_at and finished_at under DeriveDeploymentStatus.
func (g *generator) operationRow(id int64, v []any) {
	k, slot := (id-1)/TargetsPerDeployment, int((id-1)%TargetsPerDeployment)
	dep := g.opDeployment(k)
	st := g.depSt[dep-1]
	created := g.depAt[dep-1]
	started, finished, _ := g.depTimes(dep)
	r := newRNG(g.cfg.Seed, streamOperation, dep)

	// Three distinct targets.
	first := r.intn(int64(len(targets)))
	stride := 1 + r.intn(int64(len(targets)/TargetsPerDeployment-1))
	target := targets[(first+int64(slot)*stride)%int64(len(targets))]
	// Times of the other slots, inside [started, finished].
	var s, f int64
	inside := func() (int64, int64) {
		end := finished
		if end == 0 {
			end = started + 10*minute
		}
		s := started + r.intn(max(end-started, 1))
		return s, s + r.intn(max(end-s, 1))
	}
	s1, f1 := inside()
	worker := "worker-" + strconv.FormatInt(1+r.intn(16), 10)

	var state string
	var lastErr any
	switch st {
	case stPending:
		state = "pending"
	case stInProgress:
		switch slot {
		case 0:
			state, s = "running", started
		case 1:
			state, s, f = "completed", s1, f1
		default:
			state = "pending"
		}
	case stSucceeded:
		state = "completed"
		if slot == 0 {
			s, f = started, finished
		} else {
			s, f = s1, f1
		}
	case stFailed:
		if slot == 0 {
			state, s, f = "failed", started, finished
			lastErr = "health check failed on " + target + ": readiness probe timed out after 300s"
		} else {
			state, s, f = "completed", s1, f1
		}
	case stCanceled:
		state = "stopped"
		switch {
		case slot == 0:
			s, f = started, finished
		case started != 0:
			f = started + r.intn(max(finished-started, 1))
		default:
			f = created + r.intn(max(finished-created, 1))
		}
	}
	var claimedBy, claimedAt any
	if s != 0 {
		claimedBy, claimedAt = worker, usec(s)
	}
	v[0] = id
	v[1] = dep
	v[2] = target
	v[3] = state
	v[4] = int32(1)
	v[5] = lastErr
	v[6] = claimedBy
	v[7] = claimedAt
	v[8] = nullable(s)
	v[9] = nullable(f)
	v[10] = usec(created)
	v[11] = usec(max(created, s, f))
}
