package deploydb_test

import (
	"errors"
	"testing"
	"time"

	"github.com/deploydb/deploydb"
)

// TestSubMicrosecondBounds: with rows updated and finished at T and T+1µs,
// bounds half a microsecond apart select what rounding each bound up to the
// next microsecond promises (After inclusive, Before exclusive), in both
// directions; cursors are bound to the rounded values.
func TestSubMicrosecondBounds(t *testing.T) {
	t.Parallel()
	svc, pool := newService(t)
	ctx := ctxT(t)
	app := mustApp(t, svc)
	T := time.Date(2026, 3, 4, 5, 6, 7, 8000, time.UTC) // whole microseconds
	atT := mustDeployment(t, svc, app.ID, "production", deploydb.DeploymentDeployed)
	atT1 := mustDeployment(t, svc, app.ID, "staging", deploydb.DeploymentDeployed)
	for d, at := range map[deploydb.DeploymentID]time.Time{atT.ID: T, atT1.ID: T.Add(time.Microsecond)} {
		if _, err := pool.Exec(ctx, `UPDATE deployments SET updated_at = $2, started_at = $2, finished_at = $2 WHERE id = $1`, d, at); err != nil {
			t.Fatal(err)
		}
	}
	half := 500 * time.Nanosecond
	cases := []struct {
		name string
		f    deploydb.DeploymentFilter
		want []deploydb.DeploymentID // ascending
	}{
		{"updated after T-500ns", deploydb.DeploymentFilter{OrderBy: deploydb.OrderByUpdatedAt, UpdatedAfter: T.Add(-half)}, []deploydb.DeploymentID{atT.ID, atT1.ID}},
		{"updated after T", deploydb.DeploymentFilter{OrderBy: deploydb.OrderByUpdatedAt, UpdatedAfter: T}, []deploydb.DeploymentID{atT.ID, atT1.ID}},
		{"updated after T+500ns", deploydb.DeploymentFilter{OrderBy: deploydb.OrderByUpdatedAt, UpdatedAfter: T.Add(half)}, []deploydb.DeploymentID{atT1.ID}},
		{"updated before T+500ns", deploydb.DeploymentFilter{OrderBy: deploydb.OrderByUpdatedAt, UpdatedBefore: T.Add(half)}, []deploydb.DeploymentID{atT.ID}},
		{"updated before T+1µs", deploydb.DeploymentFilter{OrderBy: deploydb.OrderByUpdatedAt, UpdatedBefore: T.Add(time.Microsecond)}, []deploydb.DeploymentID{atT.ID}},
		{"updated before T+1.5µs", deploydb.DeploymentFilter{OrderBy: deploydb.OrderByUpdatedAt, UpdatedBefore: T.Add(time.Microsecond + half)}, []deploydb.DeploymentID{atT.ID, atT1.ID}},
		{"updated in [T+1ns, T+999ns]", deploydb.DeploymentFilter{OrderBy: deploydb.OrderByUpdatedAt, UpdatedAfter: T.Add(1), UpdatedBefore: T.Add(1500 * time.Nanosecond)}, []deploydb.DeploymentID{atT1.ID}},
		{"finished after T+500ns", deploydb.DeploymentFilter{OrderBy: deploydb.OrderByFinishedAt, Status: deploydb.DeploymentDeployed, FinishedAfter: T.Add(half)}, []deploydb.DeploymentID{atT1.ID}},
		{"finished before T+500ns", deploydb.DeploymentFilter{OrderBy: deploydb.OrderByFinishedAt, Status: deploydb.DeploymentDeployed, FinishedBefore: T.Add(half)}, []deploydb.DeploymentID{atT.ID}},
	}
	for _, c := range cases {
		for _, dir := range []deploydb.SortDirection{deploydb.SortAsc, deploydb.SortDesc} {
			f := c.f
			f.AppID, f.Sort = app.ID, dir
			var got []deploydb.DeploymentID
			page := deploydb.PageRequest{Size: 1}
			for {
				p, err := svc.ListDeployments(ctx, f, page)
				if err != nil {
					t.Fatalf("%s %s: %v", c.name, dir, err)
				}
				got = append(got, ids(p.Items)...)
				if p.NextCursor == "" {
					break
				}
				page.Cursor = p.NextCursor
			}
			want := c.want
			if dir == deploydb.SortDesc {
				want = reversed(want)
			}
			if !equalIDs(got, want) {
				t.Errorf("%s, %s: %v, want %v", c.name, dir, got, want)
			}
		}
	}

	// Bounds that round to the same microsecond are the same list: a cursor
	// of one continues the other. Bounds that round apart are not.
	f := deploydb.DeploymentFilter{AppID: app.ID, OrderBy: deploydb.OrderByUpdatedAt, UpdatedAfter: T.Add(-half), Sort: deploydb.SortAsc}
	p, err := svc.ListDeployments(ctx, f, deploydb.PageRequest{Size: 1})
	if err != nil || p.NextCursor == "" {
		t.Fatalf("first page: %+v, %v", p, err)
	}
	same := f
	same.UpdatedAfter = T.Add(-100 * time.Nanosecond) // rounds to T too
	if q, err := svc.ListDeployments(ctx, same, deploydb.PageRequest{Size: 1, Cursor: p.NextCursor}); err != nil || !equalIDs(ids(q.Items), []deploydb.DeploymentID{atT1.ID}) {
		t.Errorf("cursor under a bound that rounds alike: %+v, %v", q, err)
	}
	other := f
	other.UpdatedAfter = T.Add(half) // rounds to T+1µs
	if _, err := svc.ListDeployments(ctx, other, deploydb.PageRequest{Size: 1, Cursor: p.NextCursor}); !errors.Is(err, deploydb.ErrInvalidArgument) {
		t.Errorf("cursor under a bound that rounds elsewhere: %v, want ErrInvalidArgument", err)
	}
}

func reversed[T any](s []T) []T {
	out := make([]T, len(s))
	for i, v := range s {
		out[len(s)-1-i] = v
	}
	return out
}

// TestStoredTimestampsAreReachable: CreateBuilds refuses timestamps no list
// could reach (year 10000, the last half second of year 9999, year 0, a
// time that truncates to the zero time) and stores the extremes it accepts
// where every list of builds finds them.
func TestStoredTimestampsAreReachable(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	ctx := ctxT(t)
	app := mustApp(t, svc)
	refused := map[string]time.Time{
		"year 10000":                   time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		"9999-12-31T23:59:59.5Z":       time.Date(9999, 12, 31, 23, 59, 59, 5e8, time.UTC),
		"9999-12-31T23:59:59Z":         time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
		"year 0":                       time.Date(0, 12, 31, 0, 0, 0, 0, time.UTC),
		"zero time plus 500ns":         time.Time{}.Add(500),
		"23:59:59.5Z written as +0100": time.Date(10000, 1, 1, 0, 59, 59, 5e8, time.FixedZone("x", 3600)),
	}
	for name, at := range refused {
		for _, row := range []deploydb.BuildRow{
			{AppID: app.ID, CreatedAt: at},
			{AppID: app.ID, UpdatedAt: at},
			{AppID: app.ID, Status: deploydb.BuildInProgress, StartedAt: at},
			{AppID: app.ID, Status: deploydb.BuildFailed, StartedAt: time.Now(), FinishedAt: at},
		} {
			_, err := svc.CreateBuilds(ctx, deploydb.CreateBuildsParams{Rows: []deploydb.BuildRow{row}})
			checkOne(t, name, err, deploydb.ErrInvalidArgument)
		}
	}
	latest := time.Date(9999, 12, 31, 23, 59, 58, 999999999, time.UTC) // stored as ...58.999999
	earliest := time.Date(1, 1, 1, 0, 0, 0, 1000, time.UTC)
	n, err := svc.CreateBuilds(ctx, deploydb.CreateBuildsParams{Rows: []deploydb.BuildRow{
		{AppID: app.ID, SourceVersion: "latest", CreatedAt: latest, Status: deploydb.BuildSucceeded, StartedAt: latest, FinishedAt: latest},
		{AppID: app.ID, SourceVersion: "earliest", CreatedAt: earliest},
	}})
	if err != nil || n != 2 {
		t.Fatalf("CreateBuilds at the extremes: %d, %v", n, err)
	}
	all, err := svc.ListAppBuilds(ctx, deploydb.BuildFilter{AppID: app.ID}, 0)
	if err != nil || len(all) != 2 || all[0].SourceVersion != "latest" || all[1].SourceVersion != "earliest" {
		t.Fatalf("ListAppBuilds: %+v, %v", all, err)
	}
	if !all[0].CreatedAt.Equal(latest.Truncate(time.Microsecond)) {
		t.Errorf("latest stored as %s", all[0].CreatedAt.UTC().Format(time.RFC3339Nano))
	}
	var walked []string
	page := deploydb.PageRequest{Size: 1}
	for {
		p, err := svc.ListAppBuildsPaged(ctx, deploydb.BuildFilter{AppID: app.ID}, page)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range p.Items {
			walked = append(walked, b.SourceVersion)
		}
		if p.NextCursor == "" {
			break
		}
		page.Cursor = p.NextCursor
	}
	if len(walked) != 2 || walked[0] != "latest" || walked[1] != "earliest" {
		t.Errorf("ListAppBuildsPaged walked %v", walked)
	}
	if b, err := svc.GetLatestSuccessfulBuild(ctx, app.ID); err != nil || b.SourceVersion != "latest" {
		t.Errorf("GetLatestSuccessfulBuild: %+v, %v", b, err)
	}
}
