package db_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/db"
	"github.com/deploydb/deploydb/internal/pgtest"
)

func withUser(t *testing.T, raw, user, password string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(user, password)
	return u.String()
}

// TestLeastPrivilegeRoles sets up the owner and app roles on a fresh
// database, migrates as the owner, and shows that the app role can run the
// whole service but no DDL.
func TestLeastPrivilegeRoles(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin := pgtest.EmptyURL(t)
	suffix := fmt.Sprintf("%d", time.Now().UnixNano()%1_000_000_000)
	roles := db.Roles{Owner: "dd_owner_" + suffix, OwnerPassword: "owner-secret-1", App: "dd_app_" + suffix, AppPassword: "app-secret-1"}
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), admin)
		if err != nil {
			return
		}
		defer conn.Close(context.Background())
		_, _ = conn.Exec(context.Background(), fmt.Sprintf("DROP OWNED BY %s, %s", roles.Owner, roles.App))
		_, _ = conn.Exec(context.Background(), fmt.Sprintf("DROP ROLE IF EXISTS %s, %s", roles.App, roles.Owner))
	})
	if err := db.EnsureRoles(ctx, admin, roles); err != nil {
		t.Fatal(err)
	}
	if err := db.EnsureRoles(ctx, admin, roles); err != nil { // idempotent
		t.Fatalf("second EnsureRoles: %v", err)
	}
	ownerURL := withUser(t, admin, roles.Owner, roles.OwnerPassword)
	appURL := withUser(t, admin, roles.App, roles.AppPassword)
	if err := db.Migrate(ctx, ownerURL); err != nil {
		t.Fatalf("migrate as the owner: %v", err)
	}
	// Granting again after the migrations covers tables that existed
	// before the roles did; it must stay harmless.
	if err := db.EnsureRoles(ctx, admin, roles); err != nil {
		t.Fatalf("EnsureRoles after migrating: %v", err)
	}

	app, err := pgx.Connect(ctx, appURL)
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close(ctx)
	ddl := []string{
		"CREATE TABLE intruder (id int)",
		"ALTER TABLE deployments ADD COLUMN note text",
		"DROP TABLE builds",
		"TRUNCATE apps",
		fmt.Sprintf("GRANT %s TO %s", roles.Owner, roles.App),
		"DELETE FROM atlas_schema_revisions",
		"CREATE INDEX ON apps (updated_at)",
	}
	denied := 0
	for _, stmt := range ddl {
		_, err := app.Exec(ctx, stmt)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42501" {
			denied++
			continue
		}
		t.Errorf("app role ran %q: %v (want SQLSTATE 42501)", stmt, err)
	}
	t.Logf("FIGURE S1: app role: %d/%d DDL and privilege statements denied with 42501 (CREATE, ALTER, DROP, TRUNCATE, GRANT role, revisions table, CREATE INDEX); the service ran fully as the app role", denied, len(ddl))

	// The service works fully as the app role.
	svc, err := deploydb.Open(ctx, appURL)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	a, err := svc.CreateApp(ctx, deploydb.CreateAppParams{Name: "least-privilege"})
	if err != nil {
		t.Fatalf("CreateApp as the app role: %v", err)
	}
	b, _, err := svc.CreateBuild(ctx, deploydb.CreateBuildParams{AppID: a.ID, SourceVersion: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []deploydb.BuildStatus{deploydb.BuildInProgress, deploydb.BuildSucceeded} {
		if b, _, err = svc.UpdateBuildStatus(ctx, b.ID, s); err != nil {
			t.Fatal(err)
		}
	}
	n, err := svc.CreateBuilds(ctx, deploydb.CreateBuildsParams{Rows: []deploydb.BuildRow{{AppID: a.ID}, {AppID: a.ID}}})
	if err != nil || n != 2 {
		t.Fatalf("CreateBuilds (COPY) as the app role: %d, %v", n, err)
	}
	d, ops, _, err := svc.CreateDeploymentWithTargets(ctx, deploydb.CreateDeploymentWithTargetsParams{AppID: a.ID, BuildID: b.ID, Environment: "production", Targets: []string{"eu", "us"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range ops {
		if _, err := svc.ClaimNextOperation(ctx, o.Target, "w"); err != nil {
			t.Fatal(err)
		}
		if _, _, err := svc.MarkCompleted(ctx, o.ID); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := svc.GetDeploymentWithBuild(ctx, d.ID); err != nil || got.Deployment.Status != deploydb.DeploymentDeployed {
		t.Fatalf("deployment as the app role: %+v, %v", got.Deployment, err)
	}
	if _, err := svc.ListDeployments(ctx, deploydb.DeploymentFilter{AppID: a.ID}, deploydb.PageRequest{}); err != nil {
		t.Fatal(err)
	}
	if err := svc.DeleteApp(ctx, a.ID); err != nil {
		t.Fatalf("DeleteApp as the app role: %v", err)
	}
	// Status reads every column of the revisions table: the app role may
	// read only the four that Open's schema check needs.
	if _, err := db.Status(ctx, appURL); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("db.Status as the app role: %v, want permission denied", err)
	}
	for _, col := range []string{"error", "error_stmt", "hash", "description"} {
		var pgErr *pgconn.PgError
		_, err := app.Exec(ctx, "SELECT "+col+" FROM atlas_schema_revisions")
		if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
			t.Errorf("app role read atlas_schema_revisions.%s: %v (want SQLSTATE 42501)", col, err)
		}
	}
	if err := deploydb.CheckSchema(ctx, svc.Pool(), deploydb.SchemaExact); err != nil {
		t.Errorf("schema check as the app role: %v", err)
	}
}

func TestRolesSQLAndValidation(t *testing.T) {
	stmts, err := db.RolesSQL(db.Roles{Owner: "dd_owner", OwnerPassword: "p1", App: "dd_app", AppPassword: "p2"}, "deploydb", "public")
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(stmts, ";\n")
	if strings.Contains(all, "p1") || strings.Contains(all, "p2") {
		t.Fatalf("RolesSQL prints passwords:\n%s", all)
	}
	for _, want := range []string{"ALTER DEFAULT PRIVILEGES", "GRANT SELECT, INSERT, UPDATE, DELETE", `"deployment_operations"`} {
		if !strings.Contains(all, want) {
			t.Errorf("RolesSQL lacks %q", want)
		}
	}
	for _, bad := range []db.Roles{{Owner: "x", App: "x"}, {Owner: "Bad-Name", App: "a"}, {Owner: "o", App: "a; DROP"}, {Owner: "", App: "a"}} {
		if _, err := db.RolesSQL(bad, "d", "public"); err == nil {
			t.Errorf("RolesSQL(%+v) accepted", bad)
		}
	}
	if got := db.Tables(); strings.Join(got, ",") != "apps,builds,deployment_operations,deployments" {
		t.Errorf("Tables() = %v", got)
	}
}
