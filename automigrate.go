package deploydb

import (
	"context"
	"fmt"

	"github.com/deploydb/deploydb/db"
)

// WithAutoMigrate makes Open apply the pending embedded migrations before it
// connects its pool, for services that migrate at startup instead of in a
// separate CD step. It runs db.Migrate with opts, so it takes the same
// migration lock as `deploydb migrate up` and the Atlas CLI: when several
// replicas start at once, one applies the files and the others wait for it
// (up to db.WithLockWait, one minute by default) and then find nothing to
// do. Open fails, and connects nothing, when the migration fails; the error
// matches db.ErrLocked, db.ErrChecksum or wraps a *db.MigrationError.
// Only Open uses it; New does not migrate.
func WithAutoMigrate(opts ...db.MigrateOption) Option {
	return func(o *options) {
		o.autoMigrate = &autoMigrate{opts: append([]db.MigrateOption(nil), opts...)}
	}
}

// autoMigrate is the WithAutoMigrate setting; nil means off.
type autoMigrate struct{ opts []db.MigrateOption }

// run migrates the database at databaseURL when auto-migration is on.
func (a *autoMigrate) run(ctx context.Context, databaseURL string) error {
	if a == nil {
		return nil
	}
	if err := db.Migrate(ctx, databaseURL, a.opts...); err != nil {
		return fmt.Errorf("deploydb: open: migrate: %w", err)
	}
	return nil
}
