//go:build unix

package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// tempDirPrefix names the directories of local clusters, so that clusters
// left behind by killed processes can be recognized and removed.
const tempDirPrefix = "deploydb-pgtest-"

// localBins are the PostgreSQL server programs the local provider runs.
type localBins struct {
	initdb, pgCtl, postgres string
	major                   string // e.g. "15"
}

// findLocalBins looks for initdb, pg_ctl and postgres on PATH, then in the
// newest /usr/lib/postgresql/*/bin (Debian and Ubuntu install them there).
func findLocalBins() (localBins, error) {
	var b localBins
	var missing []string
	for _, p := range []struct {
		name string
		dst  *string
	}{{"initdb", &b.initdb}, {"pg_ctl", &b.pgCtl}, {"postgres", &b.postgres}} {
		path, err := exec.LookPath(p.name)
		if err != nil {
			missing = append(missing, p.name)
			continue
		}
		*p.dst = path
	}
	if len(missing) > 0 {
		dirs, _ := filepath.Glob(localBinGlob)
		sort.Slice(dirs, func(i, j int) bool { return dirVersion(dirs[i]) > dirVersion(dirs[j]) })
		b = localBins{}
		for _, d := range dirs {
			if isExecutable(filepath.Join(d, "initdb")) && isExecutable(filepath.Join(d, "pg_ctl")) &&
				isExecutable(filepath.Join(d, "postgres")) {
				b = localBins{
					initdb:   filepath.Join(d, "initdb"),
					pgCtl:    filepath.Join(d, "pg_ctl"),
					postgres: filepath.Join(d, "postgres"),
				}
				break
			}
		}
		if b.postgres == "" {
			return b, fmt.Errorf("pgtest: local provider: %s not on PATH nor in %s",
				strings.Join(missing, ", "), localBinGlob)
		}
	}
	out, err := exec.Command(b.postgres, "--version").Output()
	if err != nil {
		return b, fmt.Errorf("pgtest: local provider: %s --version: %w", b.postgres, err)
	}
	// "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
	if _, after, ok := strings.Cut(string(out), "(PostgreSQL) "); ok {
		v := strings.Fields(after)[0]
		b.major, _, _ = strings.Cut(v, ".")
	}
	if b.major == "" {
		b.major = "?"
	}
	return b, nil
}

// dirVersion extracts the numeric version from /usr/lib/postgresql/N/bin.
func dirVersion(dir string) int {
	n, err := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	if err != nil {
		return -1
	}
	return n
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// runAs is the identity the server runs under: PostgreSQL refuses to run as
// root, so root hands initdb and the server to an unprivileged user.
type runAs struct {
	cred     *syscall.Credential // nil: run as ourselves
	uid, gid int
	name     string
}

func serverIdentity() (runAs, error) {
	if os.Geteuid() != 0 {
		return runAs{uid: os.Geteuid(), gid: os.Getegid()}, nil
	}
	var errs []error
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		uid, err1 := strconv.Atoi(u.Uid)
		gid, err2 := strconv.Atoi(u.Gid)
		if err1 != nil || err2 != nil || uid == 0 {
			continue
		}
		return runAs{
			cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)},
			uid:  uid, gid: gid, name: name,
		}, nil
	}
	return runAs{}, fmt.Errorf("pgtest: local provider: running as root and found no unprivileged user "+
		"(postgres or nobody) to run PostgreSQL as: %w", errors.Join(errs...))
}

// localCluster is a running throwaway cluster.
type localCluster struct {
	bins    localBins
	as      runAs
	dir     string // temp dir: holds data/, the socket and postgres.log
	port    int
	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd has been waited for
	waitErr error
}

func (c *localCluster) dataDir() string { return filepath.Join(c.dir, "data") }
func (c *localCluster) logPath() string { return filepath.Join(c.dir, "postgres.log") }

// adminURL connects over TCP as the trusted superuser postgres.
func (c *localCluster) adminURL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
}

// startLocal creates a cluster in a new temp dir and starts a server on a
// free loopback port.
func startLocal(ctx context.Context) (*Server, error) {
	bins, err := findLocalBins()
	if err != nil {
		return nil, fmt.Errorf("%w\n%w", err, ErrNoProvider)
	}
	as, err := serverIdentity()
	if err != nil {
		return nil, err
	}
	sweepStaleClusters()

	c := &localCluster{bins: bins, as: as}
	if c.dir, err = makeTempDir(as); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			_ = c.stop()
		}
	}()

	if err := c.initdb(ctx); err != nil {
		return nil, err
	}
	// Another process may take the port between our probe and the server's
	// bind; try a few ports before giving up.
	for attempt := 1; ; attempt++ {
		err = c.start(ctx)
		if err == nil {
			break
		}
		if attempt == 3 || !errors.Is(err, errPortTaken) {
			return nil, err
		}
	}

	s := newServer(ProviderLocal, c.adminURL(),
		fmt.Sprintf("local PostgreSQL %s binaries on 127.0.0.1:%d", bins.major, c.port), c.stop)
	s.restart = c.restart
	if err := s.connect(ctx); err != nil {
		return nil, fmt.Errorf("pgtest: local provider: %w", err)
	}
	ok = true
	return s, nil
}

// makeTempDir creates the cluster's directory, owned by the server's user.
// The server's user must be able to reach it, so a temp dir below a path it
// cannot traverse is replaced by one under /tmp.
func makeTempDir(as runAs) (string, error) {
	parent := os.TempDir()
	if as.cred != nil && !traversable(parent, as) {
		parent = "/tmp"
	}
	dir, err := os.MkdirTemp(parent, tempDirPrefix)
	if err != nil {
		return "", fmt.Errorf("pgtest: local provider: %w", err)
	}
	if as.cred != nil {
		if err := os.Chown(dir, as.uid, as.gid); err != nil {
			_ = os.RemoveAll(dir)
			return "", fmt.Errorf("pgtest: local provider: hand %s to %s: %w", dir, as.name, err)
		}
	}
	return dir, nil
}

// traversable reports whether every directory from / down to dir lets
// others (or the user itself) search it.
func traversable(dir string, as runAs) bool {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return false
	}
	for {
		fi, err := os.Stat(dir)
		if err != nil {
			return false
		}
		st, _ := fi.Sys().(*syscall.Stat_t)
		perm := fi.Mode().Perm()
		switch {
		case st != nil && int(st.Uid) == as.uid:
			if perm&0o100 == 0 {
				return false
			}
		case st != nil && int(st.Gid) == as.gid:
			if perm&0o010 == 0 {
				return false
			}
		default:
			if perm&0o001 == 0 {
				return false
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return true
		}
		dir = parent
	}
}

// sweepStaleClusters removes the directories of local clusters whose
// process is gone (a test binary killed by a timeout never runs Close; its
// server dies with it, but the directory stays).
func sweepStaleClusters() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), tempDirPrefix+"*"))
	if os.TempDir() != "/tmp" {
		more, _ := filepath.Glob(filepath.Join("/tmp", tempDirPrefix+"*"))
		dirs = append(dirs, more...)
	}
	for _, d := range dirs {
		fi, err := os.Stat(d)
		if err != nil || time.Since(fi.ModTime()) < 10*time.Minute {
			continue // possibly still being set up by another process
		}
		pidFile, err := os.ReadFile(filepath.Join(d, "data", "postmaster.pid"))
		if err == nil {
			first, _, _ := strings.Cut(string(pidFile), "\n")
			if pid, err := strconv.Atoi(strings.TrimSpace(first)); err == nil && pid > 0 &&
				!errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
				continue // still running
			}
		}
		_ = os.RemoveAll(d)
	}
}

// command builds a PostgreSQL command running as the server's user, in the
// cluster's directory (the user may not be allowed into ours).
func (c *localCluster) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = c.dir
	cmd.Env = serverEnv()
	cmd.SysProcAttr = procAttr(c.as.cred, false)
	return cmd
}

// serverEnv is our environment without the PG* variables, which would
// otherwise point initdb and pg_ctl at someone else's cluster.
func serverEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			env = append(env, kv)
		}
	}
	return append(env, "LC_ALL=C")
}

func (c *localCluster) initdb(ctx context.Context) error {
	cmd := c.command(ctx, c.bins.initdb, "-D", c.dataDir(), "-U", "postgres", "--auth=trust",
		"-E", "UTF8", "--locale=C", "--no-sync")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pgtest: local provider: initdb: %w\n%s", err, bytes.TrimSpace(out))
	}
	return nil
}

var errPortTaken = errors.New("port already in use")

// start runs the server as our child on a free port and waits until it
// accepts connections.
func (c *localCluster) start(ctx context.Context) error {
	port, err := freePort()
	if err != nil {
		return fmt.Errorf("pgtest: local provider: find a free port: %w", err)
	}
	return c.startOn(ctx, port)
}

// startOn runs the server as our child on port and waits until it accepts
// connections.
func (c *localCluster) startOn(ctx context.Context, port int) error {
	c.port = port
	logFile, err := os.OpenFile(c.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("pgtest: local provider: %w", err)
	}
	defer logFile.Close() // the child has its own descriptor

	// Not CommandContext: the server outlives Start's context.
	cmd := exec.Command(c.bins.postgres, "-D", c.dataDir(),
		"-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories="+c.dir,
		"-c", "fsync=off",
		"-c", "full_page_writes=off",
		"-c", "synchronous_commit=off",
		"-c", "max_connections=200",
	)
	cmd.Dir = c.dir
	cmd.Env = serverEnv()
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	// The server dies with us even if Close never runs.
	cmd.SysProcAttr = procAttr(c.as.cred, true)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("pgtest: local provider: start postgres: %w", err)
	}
	c.cmd = cmd
	c.exited = make(chan struct{})
	go func() {
		c.waitErr = cmd.Wait()
		close(c.exited)
	}()

	deadline := time.Now().Add(60 * time.Second)
	for {
		connCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		conn, err := pgconn.Connect(connCtx, c.adminURL())
		cancel()
		if err == nil {
			_ = conn.Close(ctx)
			return nil
		}
		select {
		case <-c.exited:
			log := c.logTail()
			c.cmd = nil
			if strings.Contains(log, "could not bind") || strings.Contains(log, "already in use") {
				return fmt.Errorf("pgtest: local provider: %w: %d", errPortTaken, port)
			}
			return fmt.Errorf("pgtest: local provider: postgres exited (%v):\n%s", c.waitErr, log)
		default:
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			_ = c.stop()
			return fmt.Errorf("pgtest: local provider: server on port %d did not accept connections: %w\n%s",
				port, errors.Join(ctx.Err(), err), c.logTail())
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			continue // reported by the check above on the next turn
		}
	}
}

// logTail returns the last lines of the server log, for error messages.
func (c *localCluster) logTail() string {
	b, err := os.ReadFile(c.logPath())
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}

// stop shuts the server down immediately and removes the directory.
func (c *localCluster) stop() error {
	var errs []error
	if c.cmd != nil {
		select {
		case <-c.exited: // crashed or already stopped
		default:
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			out, err := c.command(ctx, c.bins.pgCtl, "stop", "-D", c.dataDir(), "-m", "immediate", "-w").CombinedOutput()
			if err != nil {
				errs = append(errs, fmt.Errorf("pg_ctl stop: %w: %s", err, bytes.TrimSpace(out)))
				_ = c.cmd.Process.Kill()
			}
		}
		select {
		case <-c.exited:
		case <-time.After(30 * time.Second):
			errs = append(errs, fmt.Errorf("postgres (pid %d) did not exit", c.cmd.Process.Pid))
		}
		c.cmd = nil
	}
	if c.dir != "" {
		if err := os.RemoveAll(c.dir); err != nil {
			errs = append(errs, err)
		}
		c.dir = ""
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("pgtest: stop local server: %w", err)
	}
	return nil
}

// freePort asks the kernel for a loopback port that is free right now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
