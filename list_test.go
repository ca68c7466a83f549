package deploydb_test

import (
	"context"
	"encoding/base64"
	"errors"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deploydb/deploydb"
)

func TestListDeploymentsFilterRules(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	ctx := ctxT(t)
	app := mustApp(t, svc)
	now := time.Now()
	rejected := []struct {
		name string
		rule deploydb.FilterRule
		f    deploydb.DeploymentFilter
	}{
		{"unknown order", "order-by", deploydb.DeploymentFilter{OrderBy: "id"}},
		{"unknown sort", "sort", deploydb.DeploymentFilter{Sort: "up"}},
		{"unknown status", "status", deploydb.DeploymentFilter{Status: "success"}},
		{"finished range without finished order", "finished-range", deploydb.DeploymentFilter{Status: deploydb.DeploymentDeployed, FinishedAfter: now}},
		{"finished range with updated order", "finished-range", deploydb.DeploymentFilter{OrderBy: deploydb.OrderByUpdatedAt, FinishedBefore: now}},
		{"updated range without updated order", "updated-range", deploydb.DeploymentFilter{UpdatedAfter: now}},
		{"finished order without status", "order-by-finished-at", deploydb.DeploymentFilter{OrderBy: deploydb.OrderByFinishedAt}},
		{"finished order with active status", "order-by-finished-at", deploydb.DeploymentFilter{OrderBy: deploydb.OrderByFinishedAt, Status: deploydb.DeploymentInProgress}},
		{"finished order with environment", "order-by-finished-at", deploydb.DeploymentFilter{OrderBy: deploydb.OrderByFinishedAt, Status: deploydb.DeploymentDeployed, Environment: "production"}},
		{"updated order with status", "order-by-updated-at", deploydb.DeploymentFilter{OrderBy: deploydb.OrderByUpdatedAt, Status: deploydb.DeploymentDeployed}},
		{"updated order with environment", "order-by-updated-at", deploydb.DeploymentFilter{OrderBy: deploydb.OrderByUpdatedAt, Environment: "production"}},
		{"created order with status and environment", "order-by-created-at", deploydb.DeploymentFilter{Status: deploydb.DeploymentDeployed, Environment: "production"}},
		{"empty range", "range-bounds", deploydb.DeploymentFilter{OrderBy: deploydb.OrderByUpdatedAt, UpdatedAfter: now, UpdatedBefore: now}},
	}
	for _, tc := range rejected {
		tc.f.AppID = app.ID
		_, err := svc.ListDeployments(ctx, tc.f, deploydb.PageRequest{})
		var fe *deploydb.FilterError
		if !errors.Is(err, deploydb.ErrInvalidArgument) || !errors.As(err, &fe) || fe.Rule != tc.rule || !strings.Contains(err.Error(), "rule "+string(tc.rule)+":") {
			t.Errorf("%s: %v, want ErrInvalidArgument naming rule %s", tc.name, err, tc.rule)
		}
	}
	if _, err := svc.ListDeployments(ctx, deploydb.DeploymentFilter{AppID: app.ID, Environment: "Prod"}, deploydb.PageRequest{}); !errors.Is(err, deploydb.ErrInvalidArgument) {
		t.Errorf("bad environment: %v", err)
	}
	for _, size := range []int{-1, deploydb.MaxPageSize + 1} {
		if _, err := svc.ListDeployments(ctx, deploydb.DeploymentFilter{AppID: app.ID}, deploydb.PageRequest{Size: size}); !errors.Is(err, deploydb.ErrInvalidArgument) {
			t.Errorf("page size %d: %v", size, err)
		}
	}
}

// TestListDeploymentsMatchesModel checks every accepted filter combination
// against the same selection and order computed in Go, walking all pages.
func TestListDeploymentsMatchesModel(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	ctx := ctxT(t)
	app := mustApp(t, svc)
	other := mustApp(t, svc)
	envs := []string{"production", "staging", "review-1"}
	statuses := []deploydb.DeploymentStatus{deploydb.DeploymentDeployed, deploydb.DeploymentFailed, deploydb.DeploymentCanceled, deploydb.DeploymentPending, deploydb.DeploymentDeployed}
	for i := 0; i < 30; i++ {
		mustDeployment(t, svc, app.ID, envs[i%len(envs)], statuses[i%len(statuses)])
	}
	mustDeployment(t, svc, other.ID, "production", deploydb.DeploymentDeployed)
	all, err := svc.ListAppDeployments(ctx, deploydb.DeploymentFilter{AppID: app.ID}, 100)
	if err != nil || len(all) != 30 {
		t.Fatalf("ListAppDeployments = %d, %v", len(all), err)
	}
	mid := all[15].UpdatedAt
	var midFinished time.Time
	for _, d := range all {
		if !d.FinishedAt.IsZero() && d.Status == deploydb.DeploymentDeployed {
			midFinished = d.FinishedAt
		}
	}

	filters := []deploydb.DeploymentFilter{{}, {Sort: deploydb.SortAsc}}
	for _, e := range envs {
		filters = append(filters, deploydb.DeploymentFilter{Environment: e}, deploydb.DeploymentFilter{Environment: e, Sort: deploydb.SortAsc})
	}
	for _, s := range []deploydb.DeploymentStatus{deploydb.DeploymentDeployed, deploydb.DeploymentPending} {
		filters = append(filters, deploydb.DeploymentFilter{Status: s}, deploydb.DeploymentFilter{Status: s, Sort: deploydb.SortAsc})
	}
	for _, sort := range []deploydb.SortDirection{deploydb.SortDesc, deploydb.SortAsc} {
		filters = append(filters,
			deploydb.DeploymentFilter{OrderBy: deploydb.OrderByUpdatedAt, Sort: sort},
			deploydb.DeploymentFilter{OrderBy: deploydb.OrderByUpdatedAt, Sort: sort, UpdatedAfter: mid},
			deploydb.DeploymentFilter{OrderBy: deploydb.OrderByUpdatedAt, Sort: sort, UpdatedBefore: mid},
			deploydb.DeploymentFilter{OrderBy: deploydb.OrderByFinishedAt, Sort: sort, Status: deploydb.DeploymentDeployed},
			deploydb.DeploymentFilter{OrderBy: deploydb.OrderByFinishedAt, Sort: sort, Status: deploydb.DeploymentFailed},
			deploydb.DeploymentFilter{OrderBy: deploydb.OrderByFinishedAt, Sort: sort, Status: deploydb.DeploymentDeployed, FinishedBefore: midFinished},
			deploydb.DeploymentFilter{OrderBy: deploydb.OrderByFinishedAt, Sort: sort, Status: deploydb.DeploymentCanceled, FinishedAfter: midFinished.Add(-time.Hour)},
		)
	}
	for _, f := range filters {
		want := model(all, f)
		var got []deploydb.DeploymentID
		page := deploydb.PageRequest{Size: 4}
		for {
			f.AppID = app.ID
			p, err := svc.ListDeployments(ctx, f, page)
			if err != nil {
				t.Fatalf("%+v: %v", f, err)
			}
			got = append(got, ids(p.Items)...)
			if p.NextCursor == "" {
				break
			}
			page.Cursor = p.NextCursor
		}
		if !equalIDs(got, want) {
			t.Errorf("filter %+v:\n got %v\nwant %v", f, got, want)
		}
	}
}

// model selects and orders deployments as ListDeployments documents it.
func model(all []deploydb.Deployment, f deploydb.DeploymentFilter) []deploydb.DeploymentID {
	var rows []deploydb.Deployment
	key := func(d deploydb.Deployment) time.Time { return d.CreatedAt }
	switch f.OrderBy {
	case deploydb.OrderByUpdatedAt:
		key = func(d deploydb.Deployment) time.Time { return d.UpdatedAt }
	case deploydb.OrderByFinishedAt:
		key = func(d deploydb.Deployment) time.Time { return d.FinishedAt }
	}
	for _, d := range all {
		if f.Status != "" && d.Status != f.Status || f.Environment != "" && d.Environment != f.Environment {
			continue
		}
		if f.OrderBy == deploydb.OrderByUpdatedAt && (!f.UpdatedAfter.IsZero() && d.UpdatedAt.Before(f.UpdatedAfter) || !f.UpdatedBefore.IsZero() && !d.UpdatedAt.Before(f.UpdatedBefore)) {
			continue
		}
		if f.OrderBy == deploydb.OrderByFinishedAt && (!f.FinishedAfter.IsZero() && d.FinishedAt.Before(f.FinishedAfter) || !f.FinishedBefore.IsZero() && !d.FinishedAt.Before(f.FinishedBefore)) {
			continue
		}
		rows = append(rows, d)
	}
	asc := f.Sort == deploydb.SortAsc
	sort.Slice(rows, func(i, j int) bool {
		ki, kj := key(rows[i]), key(rows[j])
		if !ki.Equal(kj) {
			return ki.Before(kj) == asc
		}
		return (rows[i].ID < rows[j].ID) == asc
	})
	return ids(rows)
}

func TestCursorRejection(t *testing.T) {
	t.Parallel()
	svc, pool := newService(t)
	ctx := ctxT(t)
	app := mustApp(t, svc)
	other := mustApp(t, svc)
	for i := 0; i < 3; i++ {
		mustBuild(t, svc, app.ID, deploydb.BuildPending)
		mustDeployment(t, svc, app.ID, "production", deploydb.DeploymentDeployed)
	}
	p, err := svc.ListAppBuildsPaged(ctx, deploydb.BuildFilter{AppID: app.ID}, deploydb.PageRequest{Size: 1})
	if err != nil || p.NextCursor == "" {
		t.Fatalf("first page: %+v, %v", p, err)
	}
	raw, err := base64.RawURLEncoding.DecodeString(p.NextCursor)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) string {
		b := append([]byte(nil), raw...)
		b[i] ^= 1
		return base64.RawURLEncoding.EncodeToString(b)
	}
	dp, err := svc.ListDeployments(ctx, deploydb.DeploymentFilter{AppID: app.ID}, deploydb.PageRequest{Size: 1})
	if err != nil || dp.NextCursor == "" {
		t.Fatalf("deployments page: %v", err)
	}
	bad := map[string]string{
		"garbage":           "not a cursor!",
		"truncated":         p.NextCursor[:len(p.NextCursor)-4],
		"flipped position":  flip(20),
		"flipped signature": flip(len(raw) - 1),
		"flipped version":   flip(0),
		"padded":            p.NextCursor + "==",
	}
	for name, c := range bad {
		if _, err := svc.ListAppBuildsPaged(ctx, deploydb.BuildFilter{AppID: app.ID}, deploydb.PageRequest{Size: 1, Cursor: c}); !errors.Is(err, deploydb.ErrInvalidArgument) {
			t.Errorf("%s cursor: %v, want ErrInvalidArgument", name, err)
		}
	}
	foreign := map[string]func() error{
		"other app": func() error {
			_, err := svc.ListAppBuildsPaged(ctx, deploydb.BuildFilter{AppID: other.ID}, deploydb.PageRequest{Size: 1, Cursor: p.NextCursor})
			return err
		},
		"other list": func() error {
			_, err := svc.ListDeployments(ctx, deploydb.DeploymentFilter{AppID: app.ID}, deploydb.PageRequest{Size: 1, Cursor: p.NextCursor})
			return err
		},
		"other filter": func() error {
			_, err := svc.ListDeployments(ctx, deploydb.DeploymentFilter{AppID: app.ID, Environment: "production"}, deploydb.PageRequest{Size: 1, Cursor: dp.NextCursor})
			return err
		},
		"other sort": func() error {
			_, err := svc.ListDeployments(ctx, deploydb.DeploymentFilter{AppID: app.ID, Sort: deploydb.SortAsc}, deploydb.PageRequest{Size: 1, Cursor: dp.NextCursor})
			return err
		},
		"other secret": func() error {
			other := deploydb.New(pool, deploydb.WithCursorSecret([]byte("another secret")))
			_, err := other.ListAppBuildsPaged(ctx, deploydb.BuildFilter{AppID: app.ID}, deploydb.PageRequest{Size: 1, Cursor: p.NextCursor})
			return err
		},
	}
	for name, call := range foreign {
		if err := call(); !errors.Is(err, deploydb.ErrInvalidArgument) {
			t.Errorf("cursor used for %s: %v, want ErrInvalidArgument", name, err)
		}
	}
	// The same secret on another Service (another replica) accepts it.
	replica := deploydb.New(pool)
	if _, err := replica.ListAppBuildsPaged(ctx, deploydb.BuildFilter{AppID: app.ID}, deploydb.PageRequest{Size: 1, Cursor: p.NextCursor}); err != nil {
		t.Errorf("cursor on a second Service with the same secret: %v", err)
	}
}

// TestPagingWalkDuringInserts walks every page while other goroutines insert
// builds: every build that existed when the walk began is seen exactly once.
func TestPagingWalkDuringInserts(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	ctx := ctxT(t)
	app := mustApp(t, svc)
	rows := make([]deploydb.BuildRow, 500)
	for i := range rows {
		rows[i] = deploydb.BuildRow{AppID: app.ID, CreatedAt: time.Now().Add(-time.Duration(i%50) * time.Second)}
	}
	if _, err := svc.CreateBuilds(ctx, deploydb.CreateBuildsParams{Rows: rows}); err != nil {
		t.Fatal(err)
	}
	before, err := svc.ListAppBuilds(ctx, deploydb.BuildFilter{AppID: app.ID}, 1) // sanity: table populated
	if err != nil || len(before) != 1 {
		t.Fatal(err)
	}
	existing := map[deploydb.BuildID]bool{}
	for page := (deploydb.PageRequest{Size: 100}); ; {
		p, err := svc.ListAppBuildsPaged(ctx, deploydb.BuildFilter{AppID: app.ID}, page)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range p.Items {
			existing[b.ID] = true
		}
		if p.NextCursor == "" {
			break
		}
		page.Cursor = p.NextCursor
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	inserted := make([]int, 3)
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, _, err := svc.CreateBuild(context.Background(), deploydb.CreateBuildParams{AppID: app.ID, SourceVersion: "concurrent"}); err == nil {
					inserted[w]++
				}
			}
		}(w)
	}
	seen := map[deploydb.BuildID]int{}
	pages := 0
	for page := (deploydb.PageRequest{Size: 7}); ; {
		p, err := svc.ListAppBuildsPaged(ctx, deploydb.BuildFilter{AppID: app.ID}, page)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, b := range p.Items {
			seen[b.ID]++
		}
		if p.NextCursor == "" {
			break
		}
		page.Cursor = p.NextCursor
	}
	close(stop)
	wg.Wait()
	missing, dup := 0, 0
	for id := range existing {
		switch seen[id] {
		case 0:
			missing++
		case 1:
		default:
			dup++
		}
	}
	for id, n := range seen {
		if n > 1 && !existing[id] {
			dup++
		}
	}
	t.Logf("walked %d pages over %d pre-existing builds while %d were inserted: %d missing, %d duplicates",
		pages, len(existing), inserted[0]+inserted[1]+inserted[2], missing, dup)
	if missing != 0 || dup != 0 || len(existing) != 500 {
		t.Fatalf("%d missing, %d seen twice (of %d pre-existing)", missing, dup, len(existing))
	}
}
