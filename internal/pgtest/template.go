package pgtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// templateLockKey is the advisory lock (on the maintenance database) that
// serializes template creation among all processes sharing a server. It
// spells "deploydb" in ASCII.
const templateLockKey int64 = 0x6465706c6f796462

// TemplatePrefix starts the name of every migrated template database; the
// rest is a digest of the migration set (db.Checksum).
const TemplatePrefix = "deploydb_tpl_"

// templateName names the template for the server's migration set.
func (s *Server) templateName() string {
	sum := sha256.Sum256([]byte(s.checksum()))
	return TemplatePrefix + hex.EncodeToString(sum[:])[:12]
}

// MigratedTemplate returns the name of a database holding all of package
// db's migrations, creating it on first use. The name is derived from the
// migrations' checksum, so a server keeps one template per migration set
// and later runs (and other processes) reuse it.
//
// Creation is safe among processes sharing the server: it holds a
// PostgreSQL advisory lock, migrates a temporary database and renames it
// into place only after the migrations succeed. The finished template is
// marked IS_TEMPLATE and closed to connections, so that nothing can block
// CREATE DATABASE ... TEMPLATE by being connected to it.
func (s *Server) MigratedTemplate(ctx context.Context) (string, error) {
	s.tplMu.Lock()
	defer s.tplMu.Unlock()
	if s.tplName != "" {
		return s.tplName, nil
	}
	name := s.templateName()
	if err := s.buildTemplate(ctx, name); err != nil {
		return "", fmt.Errorf("pgtest: migrated template %s: %w", name, err)
	}
	s.tplName = name
	return name, nil
}

func (s *Server) buildTemplate(ctx context.Context, name string) error {
	// A dedicated connection: closing it releases the lock whatever happens.
	conn, err := pgx.Connect(ctx, s.admin)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", s, err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, templateLockKey); err != nil {
		return fmt.Errorf("take template lock: %w", err)
	}

	exists, err := s.databaseExists(ctx, name)
	if err != nil {
		return err
	}
	if exists {
		return nil
	}

	// Builds that died half-way left databases named like ours; we hold the
	// lock, so none of them is in progress.
	rows, err := conn.Query(ctx, `SELECT datname FROM pg_database WHERE starts_with(datname, $1)`, name+"_build_")
	if err != nil {
		return err
	}
	stale, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, d := range stale {
		if err := s.DropDatabase(ctx, d); err != nil {
			return err
		}
	}

	tmp := name + "_build_" + randomHex(4)
	if _, err := s.CreateDatabase(ctx, tmp, ""); err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_ = s.DropDatabase(dctx, tmp)
		}
	}()
	if err := s.migrate(ctx, s.DatabaseURL(tmp)); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if err := s.disconnectAll(ctx, tmp); err != nil {
		return err
	}
	quotedTmp, quoted := pgx.Identifier{tmp}.Sanitize(), pgx.Identifier{name}.Sanitize()
	if _, err := s.pool.Exec(ctx, "ALTER DATABASE "+quotedTmp+" RENAME TO "+quoted); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	ok = true
	if _, err := s.pool.Exec(ctx, "ALTER DATABASE "+quoted+" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"); err != nil {
		return fmt.Errorf("mark as template: %w", err)
	}
	return nil
}

// disconnectAll waits for the sessions connected to the database to go away
// (a client that closed its connection leaves a backend behind for a
// moment), then terminates any that remain.
func (s *Server) disconnectAll(ctx context.Context, name string) error {
	const count = `SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`
	for i := 0; ; i++ {
		var n int
		if err := s.pool.QueryRow(ctx, count, name).Scan(&n); err != nil {
			return fmt.Errorf("count sessions on %s: %w", name, err)
		}
		if n == 0 {
			return nil
		}
		if i == 20 {
			_, err := s.pool.Exec(ctx,
				`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`,
				name)
			if err != nil {
				return fmt.Errorf("disconnect sessions from %s: %w", name, err)
			}
		}
		if i == 40 {
			return errors.New("sessions on " + name + " do not go away")
		}
		if err := sleep(ctx, 25*time.Millisecond); err != nil {
			return err
		}
	}
}
