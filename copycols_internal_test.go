package deploydb

import (
	"os"
	"strings"
	"testing"
)

// TestCopyColumnsMatchQuery: CreateBuilds feeds COPY itself; its columns
// are those sqlc compiled from queries/builds.sql's CreateBuilds, in order.
func TestCopyColumnsMatchQuery(t *testing.T) {
	src, err := os.ReadFile("internal/dbsqlc/copyfrom.go")
	if err != nil {
		t.Fatal(err)
	}
	want := `[]string{"` + strings.Join(buildCopyColumns, `", "`) + `"}`
	if !strings.Contains(string(src), `q.db.CopyFrom(ctx, []string{"builds"}, `+want) {
		t.Fatalf("internal/dbsqlc's CreateBuilds copies other columns than %s", want)
	}
}
