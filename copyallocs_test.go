package deploydb_test

import (
	"context"
	"testing"
	"time"

	"github.com/deploydb/deploydb"
)

// TestCreateBuildsAllocationsPerRow measures what one more row costs
// CreateBuilds in heap allocations: the difference between inserting 1,100
// rows and 100, over 1,000. COPY feeds every row from values prepared once,
// so a row costs at most one allocation (the driver's, if any).
func TestCreateBuildsAllocationsPerRow(t *testing.T) {
	svc, _ := newService(t)
	ctx := context.Background()
	app := mustApp(t, svc)
	at := time.Now().Add(-time.Hour)
	rows := func(n int) []deploydb.BuildRow {
		out := make([]deploydb.BuildRow, n)
		for i := range out {
			out[i] = deploydb.BuildRow{AppID: app.ID, SourceVersion: "v1", Status: deploydb.BuildSucceeded,
				CreatedAt: at, StartedAt: at, FinishedAt: at.Add(time.Minute)}
		}
		return out
	}
	measure := func(n int) float64 {
		p := deploydb.CreateBuildsParams{Rows: rows(n)}
		return testing.AllocsPerRun(5, func() {
			if _, err := svc.CreateBuilds(ctx, p); err != nil {
				t.Fatal(err)
			}
		})
	}
	small, large := measure(100), measure(1100)
	perRow := (large - small) / 1000
	figure(t, "W5A", "CreateBuilds: %.0f allocations for 100 rows, %.0f for 1,100: %.2f per row", small, large, perRow)
	if perRow > 1 {
		t.Errorf("%.2f allocations per row, want at most 1", perRow)
	}
}
