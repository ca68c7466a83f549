package deploydb

import (
	"context"
	"errors"
	"fmt"
)

// MigrateFunc applies migrations to the database at databaseURL. Package
// db's Migrator returns one that runs the embedded migrations under the
// migration lock; any function with this signature works.
type MigrateFunc func(ctx context.Context, databaseURL string) error

// WithAutoMigrate makes Open run migrate on the database URL before it
// connects its pool, for services that migrate at startup instead of in a
// separate CD step. The root package does not import the migrator (which
// links the Atlas library); pass it in:
//
//	svc, err := deploydb.Open(ctx, url, deploydb.WithAutoMigrate(db.Migrator()))
//
// db.Migrator takes the same migration lock as `deploydb migrate up` and the
// Atlas CLI: when several replicas start at once, one applies the files and
// the others wait for it (up to db.WithLockWait, one minute by default) and
// then find nothing to do. Open fails, and connects nothing, when migrate
// fails: the error matches ErrSchemaMismatch (or the context's error when
// ctx ended), and migrate's error stays in the chain (with db.Migrator it
// matches db.ErrLocked, db.ErrChecksum or wraps a *db.MigrationError). A nil
// migrate turns auto-migration off. Only Open uses it; New does not migrate.
func WithAutoMigrate(migrate MigrateFunc) Option {
	return func(o *options) { o.autoMigrate = migrate }
}

// runAutoMigrate migrates the database at databaseURL when auto-migration
// is on.
func (o *options) runAutoMigrate(ctx context.Context, databaseURL string) error {
	if o.autoMigrate == nil {
		return nil
	}
	err := o.autoMigrate(ctx, databaseURL)
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return fmt.Errorf("deploydb: open: migrate: %w", err)
	}
	return &Error{Kind: ErrSchemaMismatch, Op: "open: migrate", Msg: "the migration failed", Err: err}
}
