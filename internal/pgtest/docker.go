package pgtest

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// The docker provider runs testcontainers-go in a separate process, the
// pgcontainer command of its own module (internal/pgtest/pgcontainer), so
// that testcontainers, the Docker client and their requirements are not
// requirements of deploydb's main module and never reach its users' builds.
// pgtest builds that command once into the user cache directory (keyed by a
// digest of its sources) with the go command, starts it, reads one JSON line
// describing the container, and closes the command's standard input at
// Close, which makes it remove the container. If the test process dies, the
// pipe closes too and the container is still removed.

// dockerHint is appended to every docker provider error.
const dockerHint = `hint: on a machine that is itself a container (or CI), set
  TESTCONTAINERS_HOST_OVERRIDE=localhost  (reach published ports on this host, not on the gateway)
  TESTCONTAINERS_RYUK_DISABLED=true       (when the testcontainers/ryuk image cannot be pulled)
without registry access, build an image from the host's PostgreSQL with .ci/pg-image.sh and set
  ` + EnvImage + `=deploydb/postgres:15-offline
or choose another provider with ` + EnvProvider + `=local (installed binaries) or =url (with ` + EnvURL + `)`

// dockerError wraps err with the provider name and the hint.
func dockerError(err error) error {
	return fmt.Errorf("pgtest: docker provider: %w\n%s", err, dockerHint)
}

// containerInfo is the JSON line pgcontainer run prints.
type containerInfo struct {
	Host     string `json:"host"`
	Port     int    `json:"port"`
	Password string `json:"password"`
	Image    string `json:"image"`
	ID       string `json:"id"`
	Error    string `json:"error"`
}

// dockerSocketHinted reports whether anything on this machine points at a
// Docker engine, without starting a process: DOCKER_HOST, a testcontainers
// properties file, or one of the usual sockets. Auto mode asks pgcontainer
// only then, so machines without Docker never build it.
func dockerSocketHinted() bool {
	if os.Getenv("DOCKER_HOST") != "" || os.Getenv("TESTCONTAINERS_DOCKER_SOCKET_OVERRIDE") != "" {
		return true
	}
	candidates := []string{"/var/run/docker.sock"}
	if home, err := os.UserHomeDir(); err == nil {
		candidates = append(candidates,
			filepath.Join(home, ".testcontainers.properties"),
			filepath.Join(home, ".docker", "run", "docker.sock"),
			filepath.Join(home, ".docker", "desktop", "docker.sock"))
	}
	if dir := os.Getenv("XDG_RUNTIME_DIR"); dir != "" {
		candidates = append(candidates, filepath.Join(dir, "docker.sock"))
	}
	for _, c := range candidates {
		if _, err := os.Stat(c); err == nil {
			return true
		}
	}
	return false
}

// pingDocker reports whether a Docker engine answers within a few seconds,
// found the way testcontainers finds it (DOCKER_HOST, Docker context,
// ~/.testcontainers.properties, default sockets).
func pingDocker(ctx context.Context) error {
	if !dockerSocketHinted() {
		return errors.New("no Docker socket found (DOCKER_HOST unset, no /var/run/docker.sock)")
	}
	bin, err := containerCommand(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "ping").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w", strings.TrimSpace(string(out)), err)
	}
	return nil
}

var (
	buildOnce sync.Once
	buildBin  string
	buildErr  error
)

// containerCommand returns the path of the built pgcontainer command,
// building it on first use.
func containerCommand(ctx context.Context) (string, error) {
	buildOnce.Do(func() { buildBin, buildErr = buildContainerCommand(ctx) })
	return buildBin, buildErr
}

// containerSourceDir finds internal/pgtest/pgcontainer: next to this file
// when the sources are where they were compiled, else below the main
// module's root as the go command reports it.
func containerSourceDir(ctx context.Context, goBin string) (string, error) {
	if _, file, _, ok := runtime.Caller(0); ok {
		dir := filepath.Join(filepath.Dir(file), "pgcontainer")
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
	}
	out, err := exec.CommandContext(ctx, goBin, "env", "GOMOD").Output()
	if err == nil {
		gomod := strings.TrimSpace(string(out))
		dir := filepath.Join(filepath.Dir(gomod), "internal", "pgtest", "pgcontainer")
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
	}
	return "", errors.New("cannot find the sources of internal/pgtest/pgcontainer (the docker provider runs from a deploydb source tree)")
}

// goCommand returns the go command to build with: the toolchain that built
// this binary when it is still there, else the one on PATH.
func goCommand() (string, error) {
	if root := runtime.GOROOT(); root != "" {
		bin := filepath.Join(root, "bin", "go")
		if _, err := os.Stat(bin); err == nil {
			return bin, nil
		}
	}
	return exec.LookPath("go")
}

// buildContainerCommand builds pgcontainer into the user cache directory
// under a name derived from its sources, so later processes reuse it.
func buildContainerCommand(ctx context.Context) (string, error) {
	goBin, err := goCommand()
	if err != nil {
		return "", fmt.Errorf("the docker provider builds internal/pgtest/pgcontainer and needs the go command: %w", err)
	}
	src, err := containerSourceDir(ctx, goBin)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, name := range []string{"go.mod", "go.sum", "main.go"} {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			return "", fmt.Errorf("read pgcontainer sources: %w", err)
		}
		fmt.Fprintf(h, "%s %d\n", name, len(b))
		h.Write(b)
	}
	fmt.Fprintf(h, "%s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "deploydb")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create %s: %w", dir, err)
	}
	bin := filepath.Join(dir, "pgcontainer-"+hex.EncodeToString(h.Sum(nil))[:16])
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	fmt.Fprintln(os.Stderr, "pgtest: building internal/pgtest/pgcontainer (testcontainers-go; first use only)")
	tmp := fmt.Sprintf("%s.tmp-%d", bin, os.Getpid())
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", tmp, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly")
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("build internal/pgtest/pgcontainer: %w\n%s", err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		return "", fmt.Errorf("install pgcontainer: %w", err)
	}
	return bin, nil
}

// startDocker runs the PostgreSQL image through pgcontainer and waits until
// the published port accepts connections.
func startDocker(ctx context.Context) (*Server, error) {
	image := os.Getenv(EnvImage)
	if image == "" {
		image = DefaultImage
	}
	bin, err := containerCommand(ctx)
	if err != nil {
		return nil, dockerError(err)
	}
	// Not CommandContext: the command must outlive ctx, which only bounds
	// the start; Close ends it.
	cmd := exec.Command(bin, "run", "-image", image)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, dockerError(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, dockerError(err)
	}
	if err := cmd.Start(); err != nil {
		return nil, dockerError(fmt.Errorf("start pgcontainer: %w", err))
	}
	var once sync.Once
	var stopErr error
	stop := func() error {
		once.Do(func() {
			_ = stdin.Close()
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if err != nil {
					stopErr = fmt.Errorf("pgtest: remove container: %w", err)
				}
			case <-time.After(2 * time.Minute):
				_ = cmd.Process.Kill()
				stopErr = errors.New("pgtest: remove container: pgcontainer did not exit within 2 minutes")
			}
		})
		return stopErr
	}

	lines := make(chan containerInfo, 1)
	readErr := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(stdout).ReadBytes('\n')
		if err != nil && len(line) == 0 {
			readErr <- fmt.Errorf("pgcontainer exited before reporting a container: %w", err)
			return
		}
		var info containerInfo
		if err := json.Unmarshal(line, &info); err != nil {
			readErr <- fmt.Errorf("pgcontainer printed %q: %w", line, err)
			return
		}
		go func() { _, _ = io.Copy(io.Discard, stdout) }()
		lines <- info
	}()
	var info containerInfo
	select {
	case info = <-lines:
	case err := <-readErr:
		_ = stop()
		return nil, dockerError(err)
	case <-ctx.Done():
		_ = stop()
		return nil, dockerError(fmt.Errorf("waiting for the container: %w", ctx.Err()))
	}
	if info.Error != "" {
		_ = stop()
		return nil, dockerError(errors.New(info.Error))
	}
	hostPort := net.JoinHostPort(info.Host, strconv.Itoa(info.Port))
	admin := fmt.Sprintf("postgres://postgres:%s@%s/postgres?sslmode=disable", info.Password, hostPort)
	if err := waitAccepting(ctx, admin, 30*time.Second); err != nil {
		_ = stop()
		return nil, dockerError(err)
	}
	s := newServer(ProviderDocker, admin, fmt.Sprintf("Docker image %s on %s", image, hostPort), stop)
	if err := s.connect(ctx); err != nil {
		_ = stop()
		return nil, dockerError(err)
	}
	return s, nil
}

// waitAccepting connects until the server answers: the log line says the
// server is up inside the container, this says its published port is
// reachable from here.
func waitAccepting(ctx context.Context, connString string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		connCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		conn, err := pgconn.Connect(connCtx, connString)
		cancel()
		if err == nil {
			return conn.Close(ctx)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("server is up in the container but %s does not accept connections: %w",
				Redact(connString), errors.Join(ctx.Err(), err))
		}
		_ = sleep(ctx, 100*time.Millisecond)
	}
}
