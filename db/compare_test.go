package db

import (
	"slices"
	"testing"

	"ariga.io/atlas/sql/migrate"

	"github.com/deploydb/deploydb/db/migrations"
)

// Package migrations reads the same files as the migrator, without Atlas:
// the same versions, and the same baseline bit.
func TestMigrationsPackageAgreesWithAtlas(t *testing.T) {
	if got, want := migrations.Versions(), Versions(); !slices.Equal(got, want) {
		t.Errorf("migrations.Versions() = %v, db.Versions() = %v", got, want)
	}
	if migrations.TypeBaseline != int64(migrate.RevisionTypeBaseline) {
		t.Errorf("migrations.TypeBaseline = %d, Atlas's RevisionTypeBaseline = %d", migrations.TypeBaseline, migrate.RevisionTypeBaseline)
	}
}
