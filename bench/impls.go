package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq" // the "postgres" database/sql driver for sqlx
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/internal/dbsqlc"
)

// pageArgs is one W2 page: the app, the keyset position the page starts
// after, and the service's cursor for that same position ("" for the first
// page).
type pageArgs struct {
	app    int64
	at     time.Time
	id     int64
	cursor string
	offset int // the control's OFFSET
}

// pageSize is W2's page; every implementation reads one row more, as the
// service does to know whether there is a next page.
const pageSize = 50

// impl is one way of running the workloads. An out argument may be nil;
// when it is set, the result is copied into it in deploydb's types so that
// the cross-check can compare implementations.
type impl interface {
	name() string
	// W1
	getDeploymentWithBuild(ctx context.Context, id int64, out *deploydb.DeploymentWithBuild) error
	// W2 (keyset)
	listPage(ctx context.Context, p *pageArgs, out *[]deploydb.Deployment) error
	// W3
	createDeployment(ctx context.Context, app, build int64, env string, out *deploydb.Deployment) error
	// W4: pending -> canceled; an error unless exactly one row changed.
	cancelDeployment(ctx context.Context, id int64, out *deploydb.Deployment) error
	// W5: rows prepared by prepareBuilds, outside the timing.
	prepareBuilds(rows []deploydb.BuildRow) any
	insertBuilds(ctx context.Context, prepared any) (int64, error)
	// warm opens n connections at once, so that no timed operation waits
	// for one.
	warm(ctx context.Context, n int) error
	close()
}

var errNotOneRow = errors.New("the statement did not change exactly one row")

// --- deploydb service ---

type serviceImpl struct {
	pool *pgxpool.Pool
	svc  *deploydb.Service
}

func (serviceImpl) name() string { return "deploydb" }

func (s serviceImpl) getDeploymentWithBuild(ctx context.Context, id int64, out *deploydb.DeploymentWithBuild) error {
	r, err := s.svc.GetDeploymentWithBuild(ctx, deploydb.DeploymentID(id))
	if out != nil {
		*out = r
	}
	return err
}

func (s serviceImpl) listPage(ctx context.Context, p *pageArgs, out *[]deploydb.Deployment) error {
	page, err := s.svc.ListDeployments(ctx, deploydb.DeploymentFilter{AppID: deploydb.AppID(p.app)}, deploydb.PageRequest{Size: pageSize, Cursor: p.cursor})
	if err == nil && page.NextCursor == "" && len(page.Items) == pageSize {
		return errors.New("a full page without a next cursor")
	}
	if out != nil {
		*out = page.Items
	}
	return err
}

func (s serviceImpl) createDeployment(ctx context.Context, app, build int64, env string, out *deploydb.Deployment) error {
	d, _, err := s.svc.CreateDeployment(ctx, deploydb.CreateDeploymentParams{AppID: deploydb.AppID(app), BuildID: deploydb.BuildID(build), Environment: env})
	if out != nil {
		*out = d
	}
	return err
}

func (s serviceImpl) cancelDeployment(ctx context.Context, id int64, out *deploydb.Deployment) error {
	d, _, err := s.svc.UpdateDeploymentStatus(ctx, deploydb.DeploymentID(id), deploydb.DeploymentCanceled)
	if err == nil && (int64(d.ID) != id || d.Status != deploydb.DeploymentCanceled) {
		err = errNotOneRow
	}
	if out != nil {
		*out = d
	}
	return err
}

func (serviceImpl) prepareBuilds(rows []deploydb.BuildRow) any {
	return append([]deploydb.BuildRow(nil), rows...)
}

func (s serviceImpl) insertBuilds(ctx context.Context, prepared any) (int64, error) {
	return s.svc.CreateBuilds(ctx, deploydb.CreateBuildsParams{Rows: prepared.([]deploydb.BuildRow)})
}

func (s serviceImpl) warm(ctx context.Context, n int) error { return warmPgx(ctx, s.pool, n) }
func (s serviceImpl) close()                                { s.pool.Close() }

// --- deploydb's sqlc package (internal/dbsqlc) directly ---

type genImpl struct {
	pool *pgxpool.Pool
	q    *dbsqlc.Queries
}

func (genImpl) name() string { return "sqlc" }

func genDeployment(d dbsqlc.Deployment) deploydb.Deployment {
	return deploydb.Deployment{ID: deploydb.DeploymentID(d.ID), AppID: deploydb.AppID(d.AppID), BuildID: deploydb.BuildID(d.BuildID), Environment: d.Environment,
		Status: deploydb.DeploymentStatus(d.Status), CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt,
		StartedAt: pgTime(d.StartedAt), FinishedAt: pgTime(d.FinishedAt)}
}

func genBuild(b dbsqlc.Build) deploydb.Build {
	return deploydb.Build{ID: deploydb.BuildID(b.ID), AppID: deploydb.AppID(b.AppID), SourceVersion: b.SourceVersion.String, Status: deploydb.BuildStatus(b.Status),
		CreatedAt: b.CreatedAt, UpdatedAt: b.UpdatedAt, StartedAt: pgTime(b.StartedAt), FinishedAt: pgTime(b.FinishedAt)}
}

func pgTime(t pgtype.Timestamptz) time.Time {
	if !t.Valid {
		return time.Time{}
	}
	return t.Time
}

func (g genImpl) getDeploymentWithBuild(ctx context.Context, id int64, out *deploydb.DeploymentWithBuild) error {
	r, err := g.q.GetDeploymentWithBuild(ctx, id)
	if out != nil {
		*out = deploydb.DeploymentWithBuild{Deployment: genDeployment(r.Deployment), Build: genBuild(r.Build)}
	}
	return err
}

func (g genImpl) listPage(ctx context.Context, p *pageArgs, out *[]deploydb.Deployment) error {
	rows, err := g.q.ListAppDeploymentsPaged(ctx, dbsqlc.ListAppDeploymentsPagedParams{
		AppID: p.app, CursorCreatedAt: p.at, CursorID: p.id, PageSize: pageSize + 1})
	if out != nil {
		*out = make([]deploydb.Deployment, len(rows))
		for i, r := range rows {
			(*out)[i] = genDeployment(r)
		}
	}
	return err
}

func (g genImpl) createDeployment(ctx context.Context, app, build int64, env string, out *deploydb.Deployment) error {
	d, err := g.q.CreateDeployment(ctx, dbsqlc.CreateDeploymentParams{Environment: env, BuildID: build, AppID: app})
	if out != nil {
		*out = genDeployment(dbsqlc.Deployment(d))
	}
	return err
}

func (g genImpl) cancelDeployment(ctx context.Context, id int64, out *deploydb.Deployment) error {
	d, err := g.q.UpdateDeploymentStatus(ctx, dbsqlc.UpdateDeploymentStatusParams{NewStatus: "canceled", ID: id})
	if errors.Is(err, pgx.ErrNoRows) {
		err = errNotOneRow
	}
	if out != nil {
		*out = genDeployment(dbsqlc.Deployment(d))
	}
	return err
}

func (genImpl) prepareBuilds(rows []deploydb.BuildRow) any {
	out := make([]dbsqlc.CreateBuildsParams, len(rows))
	for i, b := range rows {
		out[i] = dbsqlc.CreateBuildsParams{AppID: int64(b.AppID), SourceVersion: pgtype.Text{String: b.SourceVersion, Valid: b.SourceVersion != ""},
			Status: string(b.Status), CreatedAt: b.CreatedAt, UpdatedAt: b.UpdatedAt,
			StartedAt: pgtype.Timestamptz{Time: b.StartedAt, Valid: !b.StartedAt.IsZero()}, FinishedAt: pgtype.Timestamptz{Time: b.FinishedAt, Valid: !b.FinishedAt.IsZero()}}
	}
	return out
}

func (g genImpl) insertBuilds(ctx context.Context, prepared any) (int64, error) {
	return g.q.CreateBuilds(ctx, prepared.([]dbsqlc.CreateBuildsParams))
}

func (g genImpl) warm(ctx context.Context, n int) error { return warmPgx(ctx, g.pool, n) }
func (g genImpl) close()                                { g.pool.Close() }

// --- hand-written pgx ---

type rawImpl struct{ pool *pgxpool.Pool }

func (rawImpl) name() string { return "pgx" }

func (r rawImpl) getDeploymentWithBuild(ctx context.Context, id int64, out *deploydb.DeploymentWithBuild) error {
	var x deploydb.DeploymentWithBuild
	var nt [4]pgtype.Timestamptz
	var sv pgtype.Text
	d, b := &x.Deployment, &x.Build
	err := r.pool.QueryRow(ctx, sqlGetDeploymentWithBuild, id).Scan(
		&d.ID, &d.AppID, &d.BuildID, &d.Environment, &d.Status, &d.CreatedAt, &d.UpdatedAt, &nt[0], &nt[1],
		&b.ID, &b.AppID, &sv, &b.Status, &b.CreatedAt, &b.UpdatedAt, &nt[2], &nt[3])
	d.StartedAt, d.FinishedAt, b.StartedAt, b.FinishedAt = pgTime(nt[0]), pgTime(nt[1]), pgTime(nt[2]), pgTime(nt[3])
	b.SourceVersion = sv.String
	if out != nil {
		*out = x
	}
	return err
}

// scanDeployment is what a careful hand-written pgx loop does: nullable
// columns go through pgtype values on the stack, so no field allocates.
func scanDeployment(row pgx.Row, d *deploydb.Deployment) error {
	var started, finished pgtype.Timestamptz
	err := row.Scan(&d.ID, &d.AppID, &d.BuildID, &d.Environment, &d.Status, &d.CreatedAt, &d.UpdatedAt, &started, &finished)
	d.StartedAt, d.FinishedAt = pgTime(started), pgTime(finished)
	return err
}

func (r rawImpl) listPage(ctx context.Context, p *pageArgs, out *[]deploydb.Deployment) error {
	rows, err := r.pool.Query(ctx, sqlListAppDeploymentsPaged, p.app, p.at, p.id, pageSize+1)
	if err != nil {
		return err
	}
	defer rows.Close()
	items := make([]deploydb.Deployment, 0, pageSize+1)
	for rows.Next() {
		items = append(items, deploydb.Deployment{})
		if err := scanDeployment(rows, &items[len(items)-1]); err != nil {
			return err
		}
	}
	if out != nil {
		*out = items
	}
	return rows.Err()
}

// listPageOffset is W2's control: the page found by OFFSET.
func (r rawImpl) listPageOffset(ctx context.Context, p *pageArgs, out *[]deploydb.Deployment) error {
	rows, err := r.pool.Query(ctx, sqlListAppDeploymentsOffset, p.app, pageSize+1, p.offset)
	if err != nil {
		return err
	}
	defer rows.Close()
	items := make([]deploydb.Deployment, 0, pageSize+1)
	for rows.Next() {
		items = append(items, deploydb.Deployment{})
		if err := scanDeployment(rows, &items[len(items)-1]); err != nil {
			return err
		}
	}
	if out != nil {
		*out = items
	}
	return rows.Err()
}

func (r rawImpl) createDeployment(ctx context.Context, app, build int64, env string, out *deploydb.Deployment) error {
	var d deploydb.Deployment
	err := scanDeployment(r.pool.QueryRow(ctx, sqlCreateDeployment, env, build, app), &d)
	if out != nil {
		*out = d
	}
	return err
}

func (r rawImpl) cancelDeployment(ctx context.Context, id int64, out *deploydb.Deployment) error {
	var d deploydb.Deployment
	err := scanDeployment(r.pool.QueryRow(ctx, sqlUpdateDeploymentStatus, "canceled", id), &d)
	if errors.Is(err, pgx.ErrNoRows) {
		err = errNotOneRow
	}
	if out != nil {
		*out = d
	}
	return err
}

// copyRow is a W5 row as the database/sql and pgx implementations send it:
// NULLs as nil pointers.
type copyRow struct {
	AppID                int64
	SourceVersion        *string
	Status               string
	CreatedAt, UpdatedAt time.Time
	StartedAt            *time.Time
	FinishedAt           *time.Time
}

func copyRows(rows []deploydb.BuildRow) []copyRow {
	out := make([]copyRow, len(rows))
	for i, b := range rows {
		out[i] = copyRow{AppID: int64(b.AppID), Status: string(b.Status), CreatedAt: b.CreatedAt, UpdatedAt: b.UpdatedAt}
		if b.SourceVersion != "" {
			out[i].SourceVersion = &rows[i].SourceVersion
		}
		if !b.StartedAt.IsZero() {
			out[i].StartedAt = &rows[i].StartedAt
		}
		if !b.FinishedAt.IsZero() {
			out[i].FinishedAt = &rows[i].FinishedAt
		}
	}
	return out
}

func (rawImpl) prepareBuilds(rows []deploydb.BuildRow) any { return copyRows(rows) }

// insertBuilds feeds COPY from the rows through one reused value slice.
func (r rawImpl) insertBuilds(ctx context.Context, prepared any) (int64, error) {
	rows := prepared.([]copyRow)
	vals := make([]any, len(buildInsertCols))
	return r.pool.CopyFrom(ctx, pgx.Identifier{"builds"}, buildInsertCols, pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) {
		b := &rows[i]
		vals[0], vals[1], vals[2], vals[3], vals[4], vals[5], vals[6] = b.AppID, b.SourceVersion, string(b.Status), b.CreatedAt, b.UpdatedAt, b.StartedAt, b.FinishedAt
		return vals, nil
	}))
}

func (r rawImpl) warm(ctx context.Context, n int) error { return warmPgx(ctx, r.pool, n) }
func (r rawImpl) close()                                { r.pool.Close() }

// warmPgx holds n connections of the pool at once.
func warmPgx(ctx context.Context, pool *pgxpool.Pool, n int) error {
	conns := make([]*pgxpool.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Release()
		}
	}()
	for range n {
		c, err := pool.Acquire(ctx)
		if err != nil {
			return err
		}
		conns = append(conns, c)
	}
	return nil
}

// --- database/sql over pgx's stdlib driver ---

type stdlibImpl struct{ db *sql.DB }

func (stdlibImpl) name() string { return "database-sql" }

type nullTimes [4]sql.NullTime

func sqlTime(n sql.NullTime) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return n.Time
}

func (s stdlibImpl) getDeploymentWithBuild(ctx context.Context, id int64, out *deploydb.DeploymentWithBuild) error {
	var x deploydb.DeploymentWithBuild
	var nt nullTimes
	var sv sql.NullString
	d, b := &x.Deployment, &x.Build
	err := s.db.QueryRowContext(ctx, sqlGetDeploymentWithBuild, id).Scan(
		&d.ID, &d.AppID, &d.BuildID, &d.Environment, &d.Status, &d.CreatedAt, &d.UpdatedAt, &nt[0], &nt[1],
		&b.ID, &b.AppID, &sv, &b.Status, &b.CreatedAt, &b.UpdatedAt, &nt[2], &nt[3])
	if err != nil {
		return err
	}
	d.StartedAt, d.FinishedAt, b.StartedAt, b.FinishedAt = sqlTime(nt[0]), sqlTime(nt[1]), sqlTime(nt[2]), sqlTime(nt[3])
	b.SourceVersion = sv.String
	if out != nil {
		*out = x
	}
	return nil
}

type sqlScanner interface{ Scan(dest ...any) error }

func scanSQLDeployment(row sqlScanner, d *deploydb.Deployment) error {
	var s, f sql.NullTime
	if err := row.Scan(&d.ID, &d.AppID, &d.BuildID, &d.Environment, &d.Status, &d.CreatedAt, &d.UpdatedAt, &s, &f); err != nil {
		return err
	}
	d.StartedAt, d.FinishedAt = sqlTime(s), sqlTime(f)
	return nil
}

func (s stdlibImpl) listPage(ctx context.Context, p *pageArgs, out *[]deploydb.Deployment) error {
	rows, err := s.db.QueryContext(ctx, sqlListAppDeploymentsPaged, p.app, p.at, p.id, pageSize+1)
	if err != nil {
		return err
	}
	defer rows.Close()
	items := make([]deploydb.Deployment, 0, pageSize+1)
	for rows.Next() {
		items = append(items, deploydb.Deployment{})
		if err := scanSQLDeployment(rows, &items[len(items)-1]); err != nil {
			return err
		}
	}
	if out != nil {
		*out = items
	}
	return rows.Err()
}

func (s stdlibImpl) createDeployment(ctx context.Context, app, build int64, env string, out *deploydb.Deployment) error {
	var d deploydb.Deployment
	err := scanSQLDeployment(s.db.QueryRowContext(ctx, sqlCreateDeployment, env, build, app), &d)
	if out != nil {
		*out = d
	}
	return err
}

func (s stdlibImpl) cancelDeployment(ctx context.Context, id int64, out *deploydb.Deployment) error {
	var d deploydb.Deployment
	err := scanSQLDeployment(s.db.QueryRowContext(ctx, sqlUpdateDeploymentStatus, "canceled", id), &d)
	if errors.Is(err, sql.ErrNoRows) {
		err = errNotOneRow
	}
	if out != nil {
		*out = d
	}
	return err
}

// insertBatch is how many rows one multi-row INSERT of database/sql (W5)
// carries: 7,000 parameters, under PostgreSQL's 65,535.
const insertBatch = 1000

// multiRowInsert returns INSERT INTO builds (...) VALUES (...), ... for n
// rows.
func multiRowInsert(n int) string {
	var b strings.Builder
	b.WriteString("INSERT INTO builds (" + strings.Join(buildInsertCols, ", ") + ") VALUES ")
	k := len(buildInsertCols)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for j := 0; j < k; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("$" + strconv.Itoa(i*k+j+1))
		}
		b.WriteByte(')')
	}
	return b.String()
}

func (stdlibImpl) prepareBuilds(rows []deploydb.BuildRow) any { return copyRows(rows) }

func (s stdlibImpl) insertBuilds(ctx context.Context, prepared any) (int64, error) {
	rows := prepared.([]copyRow)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	var n int64
	args := make([]any, 0, insertBatch*len(buildInsertCols))
	for start := 0; start < len(rows); start += insertBatch {
		batch := rows[start:min(start+insertBatch, len(rows))]
		args = args[:0]
		for _, b := range batch {
			args = append(args, b.AppID, b.SourceVersion, string(b.Status), b.CreatedAt, b.UpdatedAt, b.StartedAt, b.FinishedAt)
		}
		q := insertFull
		if len(batch) != insertBatch {
			q = multiRowInsert(len(batch))
		}
		res, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return 0, err
		}
		k, _ := res.RowsAffected()
		n += k
	}
	return n, tx.Commit()
}

var insertFull = multiRowInsert(insertBatch)

func (s stdlibImpl) warm(ctx context.Context, n int) error { return warmSQL(ctx, s.db, n) }
func (s stdlibImpl) close()                                { s.db.Close() }

func warmSQL(ctx context.Context, db *sql.DB, n int) error {
	conns := make([]*sql.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range n {
		c, err := db.Conn(ctx)
		if err != nil {
			return err
		}
		if err := c.PingContext(ctx); err != nil {
			return err
		}
		conns = append(conns, c)
	}
	return nil
}

func sizeSQLPool(db *sql.DB, n int) {
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	db.SetConnMaxIdleTime(0)
	db.SetConnMaxLifetime(0)
}

// --- sqlx over lib/pq ---

type sqlxDeployment struct {
	ID          int64      `db:"id"`
	AppID       int64      `db:"app_id"`
	BuildID     int64      `db:"build_id"`
	Environment string     `db:"environment"`
	Status      string     `db:"status"`
	CreatedAt   time.Time  `db:"created_at"`
	UpdatedAt   time.Time  `db:"updated_at"`
	StartedAt   *time.Time `db:"started_at"`
	FinishedAt  *time.Time `db:"finished_at"`
}

type sqlxBuild struct {
	ID            int64      `db:"id"`
	AppID         int64      `db:"app_id"`
	SourceVersion *string    `db:"source_version"`
	Status        string     `db:"status"`
	CreatedAt     time.Time  `db:"created_at"`
	UpdatedAt     time.Time  `db:"updated_at"`
	StartedAt     *time.Time `db:"started_at"`
	FinishedAt    *time.Time `db:"finished_at"`
}

type sqlxDeploymentWithBuild struct {
	sqlxDeployment
	Build sqlxBuild `db:"build"`
}

func (d sqlxDeployment) gen() deploydb.Deployment {
	return deploydb.Deployment{ID: deploydb.DeploymentID(d.ID), AppID: deploydb.AppID(d.AppID), BuildID: deploydb.BuildID(d.BuildID), Environment: d.Environment,
		Status: deploydb.DeploymentStatus(d.Status), CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt, StartedAt: derefTime(d.StartedAt), FinishedAt: derefTime(d.FinishedAt)}
}

func (b sqlxBuild) gen() deploydb.Build {
	return deploydb.Build{ID: deploydb.BuildID(b.ID), AppID: deploydb.AppID(b.AppID), SourceVersion: derefString(b.SourceVersion), Status: deploydb.BuildStatus(b.Status),
		CreatedAt: b.CreatedAt, UpdatedAt: b.UpdatedAt, StartedAt: derefTime(b.StartedAt), FinishedAt: derefTime(b.FinishedAt)}
}

func derefTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

func derefString(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

type sqlxImpl struct{ db *sqlx.DB }

func (sqlxImpl) name() string { return "sqlx-libpq" }

func (s sqlxImpl) getDeploymentWithBuild(ctx context.Context, id int64, out *deploydb.DeploymentWithBuild) error {
	var x sqlxDeploymentWithBuild
	err := s.db.GetContext(ctx, &x, sqlxGetDeploymentWithBuild, id)
	if out != nil {
		*out = deploydb.DeploymentWithBuild{Deployment: x.sqlxDeployment.gen(), Build: x.Build.gen()}
	}
	return err
}

func (s sqlxImpl) listPage(ctx context.Context, p *pageArgs, out *[]deploydb.Deployment) error {
	var rows []sqlxDeployment
	err := s.db.SelectContext(ctx, &rows, sqlListAppDeploymentsPaged, p.app, p.at, p.id, pageSize+1)
	if out != nil {
		*out = make([]deploydb.Deployment, len(rows))
		for i, r := range rows {
			(*out)[i] = r.gen()
		}
	}
	return err
}

func (s sqlxImpl) createDeployment(ctx context.Context, app, build int64, env string, out *deploydb.Deployment) error {
	var d sqlxDeployment
	err := s.db.GetContext(ctx, &d, sqlCreateDeployment, env, build, app)
	if out != nil {
		*out = d.gen()
	}
	return err
}

func (s sqlxImpl) cancelDeployment(ctx context.Context, id int64, out *deploydb.Deployment) error {
	var d sqlxDeployment
	err := s.db.GetContext(ctx, &d, sqlUpdateDeploymentStatus, "canceled", id)
	if errors.Is(err, sql.ErrNoRows) {
		err = errNotOneRow
	}
	if out != nil {
		*out = d.gen()
	}
	return err
}

func (sqlxImpl) prepareBuilds(rows []deploydb.BuildRow) any { return copyRows(rows) }

// insertBuilds uses lib/pq's COPY FROM STDIN support.
func (s sqlxImpl) insertBuilds(ctx context.Context, prepared any) (int64, error) {
	rows := prepared.([]copyRow)
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, "COPY builds ("+strings.Join(buildInsertCols, ", ")+") FROM STDIN")
	if err != nil {
		return 0, err
	}
	for _, b := range rows {
		if _, err := stmt.ExecContext(ctx, b.AppID, b.SourceVersion, string(b.Status), b.CreatedAt, b.UpdatedAt, b.StartedAt, b.FinishedAt); err != nil {
			stmt.Close()
			return 0, err
		}
	}
	if _, err := stmt.ExecContext(ctx); err != nil {
		stmt.Close()
		return 0, err
	}
	if err := stmt.Close(); err != nil {
		return 0, err
	}
	return int64(len(rows)), tx.Commit()
}

func (s sqlxImpl) warm(ctx context.Context, n int) error { return warmSQL(ctx, s.db.DB, n) }
func (s sqlxImpl) close()                                { s.db.Close() }

// --- GORM ---

type gormBuild struct {
	ID            int64
	AppID         int64
	SourceVersion *string
	Status        string
	CreatedAt     time.Time
	UpdatedAt     time.Time
	StartedAt     *time.Time
	FinishedAt    *time.Time
}

func (gormBuild) TableName() string { return "builds" }

type gormDeployment struct {
	ID          int64
	AppID       int64
	BuildID     int64
	Environment string
	Status      string
	CreatedAt   time.Time
	UpdatedAt   time.Time
	StartedAt   *time.Time
	FinishedAt  *time.Time
	Build       gormBuild `gorm:"foreignKey:BuildID"`
}

func (gormDeployment) TableName() string { return "deployments" }

func (d *gormDeployment) gen() deploydb.Deployment {
	return deploydb.Deployment{ID: deploydb.DeploymentID(d.ID), AppID: deploydb.AppID(d.AppID), BuildID: deploydb.BuildID(d.BuildID), Environment: d.Environment,
		Status: deploydb.DeploymentStatus(d.Status), CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt, StartedAt: derefTime(d.StartedAt), FinishedAt: derefTime(d.FinishedAt)}
}

func (b *gormBuild) gen() deploydb.Build {
	return deploydb.Build{ID: deploydb.BuildID(b.ID), AppID: deploydb.AppID(b.AppID), SourceVersion: derefString(b.SourceVersion), Status: deploydb.BuildStatus(b.Status),
		CreatedAt: b.CreatedAt, UpdatedAt: b.UpdatedAt, StartedAt: derefTime(b.StartedAt), FinishedAt: derefTime(b.FinishedAt)}
}

type gormImpl struct {
	db       *gorm.DB
	sqlDB    *sql.DB
	prepared bool
}

func (g gormImpl) name() string {
	if g.prepared {
		return "gorm-prepared"
	}
	return "gorm"
}

// openGorm opens GORM on its PostgreSQL driver (pgx's stdlib underneath),
// with GORM's defaults apart from a logger that writes nowhere (so that
// slow-query warnings do not flood the output; its cost stays).
func openGorm(url string, prepared bool, conns int) (gormImpl, error) {
	db, err := gorm.Open(postgres.Open(url), &gorm.Config{
		PrepareStmt: prepared,
		Logger: logger.New(log.New(io.Discard, "", 0), logger.Config{
			SlowThreshold: 200 * time.Millisecond, LogLevel: logger.Warn}),
	})
	if err != nil {
		return gormImpl{}, fmt.Errorf("gorm: %w", err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return gormImpl{}, err
	}
	sizeSQLPool(sqlDB, conns)
	return gormImpl{db: db, sqlDB: sqlDB, prepared: prepared}, nil
}

func (g gormImpl) getDeploymentWithBuild(ctx context.Context, id int64, out *deploydb.DeploymentWithBuild) error {
	var d gormDeployment
	err := g.db.WithContext(ctx).Joins("Build").Take(&d, id).Error
	if out != nil {
		*out = deploydb.DeploymentWithBuild{Deployment: d.gen(), Build: d.Build.gen()}
	}
	return err
}

func (g gormImpl) listPage(ctx context.Context, p *pageArgs, out *[]deploydb.Deployment) error {
	var rows []gormDeployment
	err := g.db.WithContext(ctx).
		Where("app_id = ? AND (created_at, id) < (?::timestamptz, ?::bigint)", p.app, p.at, p.id).
		Order("created_at DESC, id DESC").Limit(pageSize + 1).Find(&rows).Error
	if out != nil {
		*out = make([]deploydb.Deployment, len(rows))
		for i := range rows {
			(*out)[i] = rows[i].gen()
		}
	}
	return err
}

// createDeployment and cancelDeployment run deploydb's statements through
// GORM's Raw: the guarded INSERT ... SELECT and UPDATE have no builder
// form.
func (g gormImpl) createDeployment(ctx context.Context, app, build int64, env string, out *deploydb.Deployment) error {
	var d gormDeployment
	res := g.db.WithContext(ctx).Raw(sqlCreateDeployment, env, build, app).Scan(&d)
	err := res.Error
	if err == nil && res.RowsAffected != 1 {
		err = errNotOneRow
	}
	if out != nil {
		*out = d.gen()
	}
	return err
}

func (g gormImpl) cancelDeployment(ctx context.Context, id int64, out *deploydb.Deployment) error {
	var d gormDeployment
	res := g.db.WithContext(ctx).Raw(sqlUpdateDeploymentStatus, "canceled", id).Scan(&d)
	err := res.Error
	if err == nil && res.RowsAffected != 1 {
		err = errNotOneRow
	}
	if out != nil {
		*out = d.gen()
	}
	return err
}

func (gormImpl) prepareBuilds(rows []deploydb.BuildRow) any {
	out := make([]gormBuild, len(rows))
	for i, b := range copyRows(rows) {
		out[i] = gormBuild{AppID: b.AppID, SourceVersion: b.SourceVersion, Status: b.Status,
			CreatedAt: b.CreatedAt, UpdatedAt: b.UpdatedAt, StartedAt: b.StartedAt, FinishedAt: b.FinishedAt}
	}
	return out
}

func (g gormImpl) insertBuilds(ctx context.Context, prepared any) (int64, error) {
	rows := prepared.([]gormBuild)
	for i := range rows {
		rows[i].ID = 0 // GORM wrote the ids of the previous insert back
	}
	res := g.db.WithContext(ctx).CreateInBatches(rows, insertBatch)
	return res.RowsAffected, res.Error
}

func (g gormImpl) warm(ctx context.Context, n int) error { return warmSQL(ctx, g.sqlDB, n) }
func (g gormImpl) close()                                { g.sqlDB.Close() }

// --- construction ---

// openImpls opens every Go implementation on databaseURL, each with its
// own pool of conns connections.
func openImpls(ctx context.Context, databaseURL string, conns int) ([]impl, error) {
	pgxPool := func() (*pgxpool.Pool, error) {
		cfg, err := pgxpool.ParseConfig(databaseURL)
		if err != nil {
			return nil, err
		}
		cfg.MaxConns, cfg.MinConns = int32(conns), int32(conns)
		cfg.MaxConnIdleTime, cfg.MaxConnLifetime = time.Hour, 24*time.Hour
		return pgxpool.NewWithConfig(ctx, cfg)
	}
	var out []impl
	fail := func(err error) ([]impl, error) {
		for _, i := range out {
			i.close()
		}
		return nil, err
	}
	p1, err := pgxPool()
	if err != nil {
		return fail(err)
	}
	out = append(out, serviceImpl{pool: p1, svc: deploydb.New(p1)})
	p2, err := pgxPool()
	if err != nil {
		return fail(err)
	}
	out = append(out, genImpl{pool: p2, q: dbsqlc.New(p2)})
	p3, err := pgxPool()
	if err != nil {
		return fail(err)
	}
	out = append(out, rawImpl{pool: p3})

	cc, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		return fail(err)
	}
	sdb := stdlib.OpenDB(*cc)
	sizeSQLPool(sdb, conns)
	out = append(out, stdlibImpl{db: sdb})

	xdb, err := sqlx.Open("postgres", databaseURL)
	if err != nil {
		return fail(err)
	}
	sizeSQLPool(xdb.DB, conns)
	out = append(out, sqlxImpl{db: xdb})

	for _, prepared := range []bool{false, true} {
		g, err := openGorm(databaseURL, prepared, conns)
		if err != nil {
			return fail(err)
		}
		out = append(out, g)
	}
	for _, i := range out {
		if err := i.warm(ctx, conns); err != nil {
			return fail(fmt.Errorf("%s: open %d connections: %w", i.name(), conns, err))
		}
	}
	return out, nil
}
