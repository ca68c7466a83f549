package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/deploydb/deploydb/internal/pgtest"
)

func TestRolesCommand(t *testing.T) {
	t.Setenv("DEPLOYDB_APP_PASSWORD", "app-pw-123")
	code, out, errOut := runCmd(t, "roles", "--print", "--owner", "o_role", "--app", "a_role")
	if code != 0 || !strings.Contains(out, "ALTER DEFAULT PRIVILEGES FOR ROLE \"o_role\"") || strings.Contains(out, "app-pw-123") {
		t.Fatalf("roles --print: code %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := runCmd(t, "roles", "--owner", "Bad Name", "--print"); code != 1 || !strings.Contains(errOut, "role name") {
		t.Fatalf("bad role name: code %d, %q", code, errOut)
	}

	url := pgtest.EmptyURL(t)
	suffix := fmt.Sprint(time.Now().UnixNano() % 1_000_000)
	owner, app := "cmd_owner_"+suffix, "cmd_app_"+suffix
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), url)
		if err == nil {
			_, _ = conn.Exec(context.Background(), fmt.Sprintf("DROP OWNED BY %s, %s; DROP ROLE %s, %s", owner, app, app, owner))
			conn.Close(context.Background())
		}
	})
	code, out, errOut = runCmd(t, "roles", "--url", url, "--owner", owner, "--app", app)
	if code != 0 || !strings.Contains(out, "roles ready") {
		t.Fatalf("roles: code %d\n%s%s", code, out, errOut)
	}
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM pg_roles WHERE rolname IN ($1, $2) AND NOT rolsuper", owner, app).Scan(&n); err != nil || n != 2 {
		t.Fatalf("%d roles created (%v)", n, err)
	}
}
