package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tcpostgres "github.com/testcontainers/testcontainers-go/modules/postgres"
	"github.com/testcontainers/testcontainers-go/wait"
)

// readyLine is logged by PostgreSQL when it accepts connections. The
// official image (and the one .ci/pg-image.sh builds) logs it twice: once
// for the temporary server that creates the user and database, once for the
// real one.
const readyLine = "database system is ready to accept connections"

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

// pingDocker reports whether a Docker engine answers within a few seconds,
// found the way testcontainers finds it (DOCKER_HOST, Docker context,
// ~/.testcontainers.properties, default sockets).
func pingDocker(ctx context.Context) (err error) {
	defer func() {
		if r := recover(); r != nil { // testcontainers panics on some discovery failures
			err = fmt.Errorf("docker discovery: %v", r)
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return err
	}
	defer cli.Close()
	_, err = cli.Ping(ctx, client.PingOptions{})
	return err
}

// ensureImage makes sure image is present, pulling it once (testcontainers
// itself would retry a failing pull for many minutes).
func ensureImage(ctx context.Context, image string) error {
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return err
	}
	defer cli.Close()
	if _, err := cli.ImageInspect(ctx, image); err == nil {
		return nil
	}
	pullCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	fmt.Fprintf(os.Stderr, "pgtest: pulling image %s\n", image)
	resp, err := cli.ImagePull(pullCtx, image, client.ImagePullOptions{})
	if err != nil {
		return fmt.Errorf("image %s is not present and could not be pulled: %w", image, err)
	}
	defer resp.Close()
	if err := resp.Wait(pullCtx); err != nil {
		return fmt.Errorf("image %s is not present and could not be pulled: %w", image, err)
	}
	return nil
}

// startDocker runs the PostgreSQL image with testcontainers' postgres
// module and waits until it accepts connections.
func startDocker(ctx context.Context) (s *Server, err error) {
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, dockerError(fmt.Errorf("testcontainers: %v", r))
		}
	}()
	image := os.Getenv(EnvImage)
	if image == "" {
		image = DefaultImage
	}
	if err := pingDocker(ctx); err != nil {
		return nil, dockerError(fmt.Errorf("no Docker engine answers: %w", err))
	}
	if err := ensureImage(ctx, image); err != nil {
		return nil, dockerError(err)
	}

	password := randomHex(16)
	ctr, err := tcpostgres.Run(ctx, image,
		tcpostgres.WithUsername("postgres"),
		tcpostgres.WithPassword(password),
		tcpostgres.WithDatabase("postgres"),
		// The module already passes -c fsync=off.
		testcontainers.WithCmdArgs(
			"-c", "full_page_writes=off",
			"-c", "synchronous_commit=off",
			"-c", "max_connections=200",
		),
		testcontainers.WithLabels(map[string]string{"org.deploydb.pgtest": "1"}),
		testcontainers.WithWaitStrategy(
			wait.ForLog(readyLine).WithOccurrence(2).WithStartupTimeout(2*time.Minute),
		),
	)
	terminate := func() error {
		if ctr == nil {
			return nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := testcontainers.TerminateContainer(ctr, testcontainers.StopContext(ctx)); err != nil {
			return fmt.Errorf("pgtest: terminate container: %w", err)
		}
		return nil
	}
	if err != nil {
		_ = terminate()
		return nil, dockerError(err)
	}

	host, err := ctr.Host(ctx)
	if err == nil {
		var port int
		if p, perr := ctr.MappedPort(ctx, "5432/tcp"); perr != nil {
			err = perr
		} else {
			port = int(p.Num())
		}
		if err == nil {
			admin := fmt.Sprintf("postgres://postgres:%s@%s/postgres?sslmode=disable",
				password, net.JoinHostPort(host, strconv.Itoa(port)))
			err = waitAccepting(ctx, admin, 30*time.Second)
			if err == nil {
				s = newServer(ProviderDocker, admin,
					fmt.Sprintf("Docker image %s on %s", image, net.JoinHostPort(host, strconv.Itoa(port))),
					terminate)
				err = s.connect(ctx)
			}
		}
	}
	if err != nil {
		_ = terminate()
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
