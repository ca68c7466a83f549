package main

import (
	"bufio"
	"context"
	"embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/deploydb/deploydb"
)

//go:embed pgbench/*.sql
var pgbenchFiles embed.FS

// pgbenchScript is a pgbench script of one SQL statement, and the same
// statement with $n parameters for the cross-check.
type pgbenchScript struct {
	name   string
	text   string   // the file
	sql    string   // the statement, :vars replaced by $1, $2, ...
	params []string // the variables, in $n order
}

var pgbenchVar = regexp.MustCompile(`(^|[^:]):([a-z_][a-z0-9_]*)`)

func loadPgbenchScripts() (map[string]*pgbenchScript, error) {
	entries, err := pgbenchFiles.ReadDir("pgbench")
	if err != nil {
		return nil, err
	}
	out := map[string]*pgbenchScript{}
	for _, e := range entries {
		b, err := pgbenchFiles.ReadFile("pgbench/" + e.Name())
		if err != nil {
			return nil, err
		}
		var lines []string
		for _, l := range strings.Split(string(b), "\n") {
			if t := strings.TrimSpace(l); t == "" || strings.HasPrefix(t, `\`) || strings.HasPrefix(t, "--") {
				continue
			}
			lines = append(lines, l)
		}
		s := newPgbenchStatement(e.Name(), strings.Join(lines, "\n"))
		s.text = string(b)
		out[e.Name()] = s
	}
	return out, nil
}

// newPgbenchStatement returns the script of one statement with pgbench
// :variables; its sql has them replaced by $1, $2, ... in order of first
// use, for pgx.
func newPgbenchStatement(name, stmt string) *pgbenchScript {
	stmt = strings.TrimSuffix(strings.TrimSpace(stmt), ";")
	s := &pgbenchScript{name: name, text: stmt}
	index := map[string]int{}
	s.sql = pgbenchVar.ReplaceAllStringFunc(stmt, func(m string) string {
		sub := pgbenchVar.FindStringSubmatch(m)
		n, ok := index[sub[2]]
		if !ok {
			s.params = append(s.params, sub[2])
			n = len(s.params)
			index[sub[2]] = n
		}
		return sub[1] + "$" + strconv.Itoa(n)
	})
	return s
}

func (s *pgbenchScript) args(vars map[string]any) ([]any, error) {
	args := make([]any, len(s.params))
	for i, p := range s.params {
		v, ok := vars[p]
		if !ok {
			return nil, fmt.Errorf("%s: no value for :%s", s.name, p)
		}
		args[i] = v
	}
	return args, nil
}

// queryDeploymentWithBuild runs W1's script statement through pgx.
func (s *pgbenchScript) queryDeploymentWithBuild(ctx context.Context, pool *pgxpool.Pool, vars map[string]any) (deploydb.DeploymentWithBuild, error) {
	var x deploydb.DeploymentWithBuild
	args, err := s.args(vars)
	if err != nil {
		return x, err
	}
	var nt [4]pgtype.Timestamptz
	var sv pgtype.Text
	d, b := &x.Deployment, &x.Build
	err = pool.QueryRow(ctx, s.sql, args...).Scan(
		&d.ID, &d.AppID, &d.BuildID, &d.Environment, &d.Status, &d.CreatedAt, &d.UpdatedAt, &nt[0], &nt[1],
		&b.ID, &b.AppID, &sv, &b.Status, &b.CreatedAt, &b.UpdatedAt, &nt[2], &nt[3])
	d.StartedAt, d.FinishedAt, b.StartedAt, b.FinishedAt = pgTime(nt[0]), pgTime(nt[1]), pgTime(nt[2]), pgTime(nt[3])
	b.SourceVersion = sv.String
	return deploydb.DeploymentWithBuild{Deployment: normDeployment(x.Deployment), Build: normBuild(x.Build)}, err
}

// queryDeployments runs a W2 script statement through pgx.
func (s *pgbenchScript) queryDeployments(ctx context.Context, pool *pgxpool.Pool, vars map[string]any) ([]deploydb.Deployment, error) {
	args, err := s.args(vars)
	if err != nil {
		return nil, err
	}
	rows, err := pool.Query(ctx, s.sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (deploydb.Deployment, error) {
		var d deploydb.Deployment
		return d, scanDeployment(r, &d)
	})
}

// pgbenchVars are the -D variables of a workload's script.
func pgbenchVars(w *workload, fx *fixtures) map[string]string {
	switch {
	case w.key == "W1":
		return map[string]string{"max_id": strconv.FormatInt(fx.maxDeployment, 10)}
	case strings.HasPrefix(w.key, "W2/offset/"):
		p := fx.pages[strings.TrimPrefix(w.key, "W2/")]
		return map[string]string{"app": strconv.FormatInt(p.app, 10), "off": strconv.Itoa(p.offset)}
	case strings.HasPrefix(w.key, "W2/"):
		p := fx.pages[strings.TrimPrefix(w.key, "W2/")]
		return map[string]string{"app": strconv.FormatInt(p.app, 10),
			"cursor_at": p.at.UTC().Format(time.RFC3339Nano), "cursor_id": strconv.FormatInt(p.id, 10)}
	}
	return nil
}

// runPgbench runs one pgbench cell: conc clients (one thread each), for
// duration (whole seconds, at least one) or, when transactions > 0, that
// many transactions per client. It returns the transactions per second
// pgbench reports without connection time, and every latency from its
// per-transaction log.
func runPgbench(ctx context.Context, connString string, s *pgbenchScript, vars map[string]string, conc int, duration time.Duration, transactions int) (float64, []time.Duration, int64, error) {
	cfg, err := pgconn.ParseConfig(connString)
	if err != nil {
		return 0, nil, 0, err
	}
	dir, err := os.MkdirTemp("", "deploydb-pgbench-")
	if err != nil {
		return 0, nil, 0, err
	}
	defer os.RemoveAll(dir)
	script := filepath.Join(dir, s.name)
	if err := os.WriteFile(script, []byte(s.text), 0o644); err != nil {
		return 0, nil, 0, err
	}
	args := []string{"-n", "-M", "prepared", "-c", strconv.Itoa(conc), "-j", strconv.Itoa(conc),
		"-f", script, "-l", "--log-prefix", filepath.Join(dir, "log"),
		"-h", cfg.Host, "-p", strconv.Itoa(int(cfg.Port)), "-U", cfg.User}
	if transactions > 0 {
		args = append(args, "-t", strconv.Itoa(transactions))
	} else {
		args = append(args, "-T", strconv.Itoa(max(1, int(duration.Round(time.Second)/time.Second))))
	}
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		args = append(args, "-D", k+"="+vars[k])
	}
	args = append(args, cfg.Database)
	cmd := exec.CommandContext(ctx, "pgbench", args...)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+cfg.Password, "PGSSLMODE=disable")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, nil, 0, fmt.Errorf("pgbench %s: %w\n%s", s.name, err, out)
	}
	m := regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`).FindSubmatch(out)
	if m == nil {
		return 0, nil, 0, fmt.Errorf("pgbench %s: no tps in its output:\n%s", s.name, out)
	}
	tps, _ := strconv.ParseFloat(string(m[1]), 64)
	if regexp.MustCompile(`number of failed transactions: [1-9]`).Match(out) {
		return 0, nil, 0, fmt.Errorf("pgbench %s: failed transactions:\n%s", s.name, out)
	}
	logs, _ := filepath.Glob(filepath.Join(dir, "log.*"))
	var lat []time.Duration
	for _, l := range logs {
		f, err := os.Open(l)
		if err != nil {
			return 0, nil, 0, err
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 3 {
				continue
			}
			us, err := strconv.ParseInt(fields[2], 10, 64)
			if err == nil {
				lat = append(lat, time.Duration(us)*time.Microsecond)
			}
		}
		f.Close()
	}
	if len(lat) == 0 {
		return 0, nil, 0, fmt.Errorf("pgbench %s: empty transaction log", s.name)
	}
	return tps, lat, int64(len(lat)), nil
}

// pgbenchVersion returns `pgbench --version`.
func pgbenchVersion() string {
	out, err := exec.Command("pgbench", "--version").Output()
	if err != nil {
		return "pgbench not found"
	}
	return strings.TrimSpace(string(out))
}
