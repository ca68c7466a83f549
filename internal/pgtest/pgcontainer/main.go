// Command pgcontainer runs one throwaway PostgreSQL container with
// testcontainers-go for internal/pgtest's docker provider. It lives in a
// module of its own so that testcontainers, the Docker client and their
// requirements stay out of deploydb's main module: pgtest builds and runs
// this command when a test asks for the docker provider.
//
// Usage:
//
//	pgcontainer ping              exit 0 when a Docker engine answers within a few seconds
//	pgcontainer run -image IMAGE  start a container and print one JSON line describing it
//
// run prints {"host":...,"port":...,"password":...,"image":...} on standard
// output once the server inside the container has logged that it accepts
// connections, then waits until its standard input is closed (its parent
// exited or is done with the server) or it receives SIGINT/SIGTERM, and
// removes the container. On failure it prints {"error":"..."} and exits 1.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

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

// Started describes a running container; run prints it as one JSON line.
type Started struct {
	Host     string `json:"host"`
	Port     int    `json:"port"`
	Password string `json:"password"`
	Image    string `json:"image"`
	ID       string `json:"id"`
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: pgcontainer ping | run -image IMAGE")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch os.Args[1] {
	case "ping":
		if err := ping(ctx); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	case "run":
		fs := flag.NewFlagSet("run", flag.ExitOnError)
		image := fs.String("image", "postgres:15-alpine", "PostgreSQL image to run")
		_ = fs.Parse(os.Args[2:])
		if err := run(ctx, *image, os.Stdin, os.Stdout); err != nil {
			_ = json.NewEncoder(os.Stdout).Encode(map[string]string{"error": err.Error()})
			os.Exit(1)
		}
	default:
		fmt.Fprintf(os.Stderr, "pgcontainer: unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
}

// ping reports whether a Docker engine answers, found the way
// testcontainers finds it (DOCKER_HOST, Docker context,
// ~/.testcontainers.properties, default sockets).
func ping(ctx context.Context) (err error) {
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

// run starts the container, reports it on out, and removes it when in is
// closed or ctx is cancelled.
func run(ctx context.Context, image string, in io.Reader, out io.Writer) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("testcontainers: %v", r)
		}
	}()
	if err := ping(ctx); err != nil {
		return fmt.Errorf("no Docker engine answers: %w", err)
	}
	if err := ensureImage(ctx, image); err != nil {
		return err
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
		tctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		return testcontainers.TerminateContainer(ctr, testcontainers.StopContext(tctx))
	}
	if err != nil {
		return errors.Join(err, terminate())
	}
	started := Started{Image: image, Password: password, ID: ctr.GetContainerID()}
	started.Host, err = ctr.Host(ctx)
	if err == nil {
		p, perr := ctr.MappedPort(ctx, "5432/tcp")
		err = perr
		started.Port = int(p.Num())
	}
	if err == nil {
		err = json.NewEncoder(out).Encode(started)
	}
	if err != nil {
		return errors.Join(err, terminate())
	}

	// Wait for the parent: EOF (or any read error) on stdin, or a signal.
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, in)
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
	if err := terminate(); err != nil {
		fmt.Fprintf(os.Stderr, "pgcontainer: terminate container %s: %v\n", started.ID, err)
		os.Exit(1)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms.
	return hex.EncodeToString(b)
}
