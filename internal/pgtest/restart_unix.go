//go:build unix

package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"
)

func (c *localCluster) restart(ctx context.Context, down time.Duration) error {
	if c.cmd == nil {
		return errors.New("pgtest: restart: the server is not running")
	}
	port := c.port
	out, err := c.command(ctx, c.bins.pgCtl, "stop", "-D", c.dataDir(), "-m", "immediate", "-w").CombinedOutput()
	if err != nil {
		return fmt.Errorf("pgtest: restart: pg_ctl stop: %w: %s", err, bytes.TrimSpace(out))
	}
	select {
	case <-c.exited:
	case <-time.After(30 * time.Second):
		return fmt.Errorf("pgtest: restart: postgres (pid %d) did not exit", c.cmd.Process.Pid)
	}
	c.cmd = nil
	if err := sleep(ctx, down); err != nil {
		return err
	}
	return c.startOn(ctx, port)
}

// StartLocal starts a throwaway cluster from the local PostgreSQL binaries,
// whatever DEPLOYDB_PG_PROVIDER says: for tests that must own their server,
// such as restart tests. Close removes it.
func StartLocal(ctx context.Context) (*Server, error) {
	return startLocal(ctx)
}
