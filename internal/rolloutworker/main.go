// Command rolloutworker is the worker process of deploydb's crash tests. It
// connects to the database named by DATABASE_URL, claims one operation on a
// target with a short lease, prints
//
//	claimed ID TOKEN
//
// on standard output (the operation's id and the claim's fencing token), and
// then sleeps without heartbeating or moving the operation, as a worker
// that hangs or is killed mid-operation would. The test kills it.
//
// Usage:
//
//	DATABASE_URL=postgres://... rolloutworker -target T -worker W -lease 500ms
//
// It exits with status 3 when nothing on the target is claimable and 1 on
// any other failure.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/deploydb/deploydb"
)

func main() {
	os.Exit(run())
}

func run() int {
	target := flag.String("target", "", "the target to claim an operation on")
	worker := flag.String("worker", "rolloutworker", "the worker name recorded on the claim")
	lease := flag.Duration("lease", 500*time.Millisecond, "the lease of the claim")
	sleep := flag.Duration("sleep", 10*time.Minute, "how long to hold the claim before exiting")
	flag.Parse()
	url := os.Getenv("DATABASE_URL")
	if url == "" || *target == "" {
		fmt.Fprintln(os.Stderr, "rolloutworker: DATABASE_URL and -target are required")
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	svc, err := deploydb.Open(ctx, url, deploydb.WithMaxConns(1))
	if err != nil {
		fmt.Fprintln(os.Stderr, "rolloutworker:", err)
		return 1
	}
	defer svc.Close()
	ops, err := svc.ClaimOperations(ctx, deploydb.ClaimParams{Target: *target, Worker: *worker, Lease: *lease})
	if errors.Is(err, deploydb.ErrNotFound) {
		fmt.Fprintln(os.Stderr, "rolloutworker: nothing to claim on", *target)
		return 3
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rolloutworker:", err)
		return 1
	}
	fmt.Printf("claimed %d %d\n", ops[0].ID, ops[0].LeaseToken)
	// Hold the claim: no heartbeat, no move.
	time.Sleep(*sleep)
	return 0
}
