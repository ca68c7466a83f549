package deploydb

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/deploydb/deploydb/internal/dbsqlc"
)

// BuildRow is one build for CreateBuilds. The table's CHECK constraints
// apply: a started or finished status needs StartedAt, a terminal one
// FinishedAt. Timestamps are stored truncated to the microsecond and must
// then lie after 0001-01-01T00:00:00Z and before 9999-12-31T23:59:59Z
// (ErrInvalidArgument otherwise), so that every list can reach the row.
type BuildRow struct {
	// AppID is the app the build belongs to.
	AppID AppID
	// SourceVersion is the commit or tag; "" for none.
	SourceVersion string
	// Status is the build's status; "" means pending.
	Status BuildStatus
	// CreatedAt is when the build was created; the zero time means now.
	CreatedAt time.Time
	// UpdatedAt is when the build last changed; the zero time means
	// CreatedAt.
	UpdatedAt time.Time
	// StartedAt is when the build started; the zero time for none.
	StartedAt time.Time
	// FinishedAt is when the build finished; the zero time for none.
	FinishedAt time.Time
}

// CreateBuild creates a pending build of an app from a source version.
// created reports whether this call inserted the row: it is false when
// p.IdempotencyKey was used before by the same app with the same source
// version, and the first build is returned (a repeat with another source
// version is ErrConflict). It returns ErrNotFound when the app does not
// exist.
func (s *Service) CreateBuild(ctx context.Context, p CreateBuildParams) (b Build, created bool, err error) {
	op := "create build of app " + strconv.FormatInt(int64(p.AppID), 10)
	if err := checkSourceVersion(op, p.SourceVersion); err != nil {
		return Build{}, false, err
	}
	if err := checkIdempotencyKey(op, p.IdempotencyKey); err != nil {
		return Build{}, false, err
	}
	row, err := s.q.CreateBuild(ctx, dbsqlc.CreateBuildParams{
		AppID: int64(p.AppID), SourceVersion: nullText(p.SourceVersion), IdempotencyKey: nullText(p.IdempotencyKey)})
	if err == nil {
		return buildFromRow(row), true, nil
	}
	if p.IdempotencyKey == "" || !errors.Is(err, pgx.ErrNoRows) {
		return Build{}, false, mapError(ctx, opWrite, op, err)
	}
	// The key was used: a repeat, or a conflicting reuse.
	first, err := s.q.GetBuildByIdempotencyKey(ctx, dbsqlc.GetBuildByIdempotencyKeyParams{AppID: int64(p.AppID), IdempotencyKey: nullText(p.IdempotencyKey)})
	if err != nil {
		return Build{}, false, mapError(ctx, opRead, op, err)
	}
	if first.SourceVersion.String != p.SourceVersion {
		return Build{}, false, &Error{Kind: ErrConflict, Op: op, Msg: fmt.Sprintf(
			"idempotency key %q was used for build %d of source version %q, not %q", truncate(p.IdempotencyKey), first.ID,
			truncate(first.SourceVersion.String), truncate(p.SourceVersion))}
	}
	return buildFromRow(first), false, nil
}

// CreateBuilds bulk-inserts builds with COPY and returns how many were
// inserted. It is all or nothing: one bad row (unknown app, invalid status,
// timestamps that break a CHECK) fails the whole call.
func (s *Service) CreateBuilds(ctx context.Context, p CreateBuildsParams) (int64, error) {
	const op = "create builds"
	now := time.Now()
	src := &buildCopy{rows: make([]copyBuild, len(p.Rows))} // defaults are filled in here, not in the caller's rows
	for i, r := range p.Rows {
		if r.Status == "" {
			r.Status = BuildPending
		}
		if !r.Status.Valid() {
			return 0, invalidArg(op, "row %d: unknown build status %q", i, truncate(string(r.Status)))
		}
		if err := checkSourceVersion(op, r.SourceVersion); err != nil {
			return 0, fmt.Errorf("row %d: %w", i, err)
		}
		var err error
		if r.CreatedAt, err = storedTime(op, i, "CreatedAt", r.CreatedAt); err != nil {
			return 0, err
		}
		if r.UpdatedAt, err = storedTime(op, i, "UpdatedAt", r.UpdatedAt); err != nil {
			return 0, err
		}
		if r.StartedAt, err = storedTime(op, i, "StartedAt", r.StartedAt); err != nil {
			return 0, err
		}
		if r.FinishedAt, err = storedTime(op, i, "FinishedAt", r.FinishedAt); err != nil {
			return 0, err
		}
		if r.CreatedAt.IsZero() {
			r.CreatedAt = now
		}
		if r.UpdatedAt.IsZero() {
			r.UpdatedAt = r.CreatedAt
		}
		src.rows[i] = copyBuild{
			appID: copyInt8(r.AppID), sourceVersion: copyText(nullText(r.SourceVersion)), status: copyText(nullText(string(r.Status))),
			createdAt: copyTime(nullTime(r.CreatedAt)), updatedAt: copyTime(nullTime(r.UpdatedAt)),
			startedAt: copyTime(nullTime(r.StartedAt)), finishedAt: copyTime(nullTime(r.FinishedAt)),
		}
	}
	n, err := s.conn.CopyFrom(ctx, pgx.Identifier{"builds"}, buildCopyColumns, src)
	return n, mapError(ctx, opWrite, op, err)
}

// buildCopyColumns are the columns CreateBuilds fills, in the order of
// copyBuild's values: those of queries/builds.sql's CreateBuilds.
var buildCopyColumns = []string{"app_id", "source_version", "status", "created_at", "updated_at", "started_at", "finished_at"}

// copyBuild is one validated row of CreateBuilds. Its values reach COPY as
// pointers to its fields, whose types hand pgx their value through the
// pgtype valuer interfaces, so feeding a row allocates nothing: the
// generated CopyFrom boxes seven values per row instead.
type copyBuild struct {
	appID                 copyInt8
	sourceVersion, status copyText
	createdAt, updatedAt  copyTime
	startedAt, finishedAt copyTime
}

type (
	copyInt8 int64
	copyText pgtype.Text
	copyTime pgtype.Timestamptz
)

func (v *copyInt8) Int64Value() (pgtype.Int8, error) {
	return pgtype.Int8{Int64: int64(*v), Valid: true}, nil
}
func (v *copyText) TextValue() (pgtype.Text, error) { return pgtype.Text(*v), nil }
func (v *copyTime) TimestamptzValue() (pgtype.Timestamptz, error) {
	return pgtype.Timestamptz(*v), nil
}

// buildCopy is CreateBuilds' pgx.CopyFromSource: one values slice, reused
// for every row.
type buildCopy struct {
	rows []copyBuild
	next int
	vals [7]any
}

func (c *buildCopy) Next() bool {
	c.next++
	return c.next <= len(c.rows)
}

func (c *buildCopy) Values() ([]any, error) {
	r := &c.rows[c.next-1]
	c.vals = [7]any{&r.appID, &r.sourceVersion, &r.status, &r.createdAt, &r.updatedAt, &r.startedAt, &r.finishedAt}
	return c.vals[:], nil
}

func (c *buildCopy) Err() error { return nil }

// GetBuild returns the build with the given id, or ErrNotFound.
func (s *Service) GetBuild(ctx context.Context, id BuildID) (Build, error) {
	b, err := s.q.GetBuild(ctx, int64(id))
	if err != nil {
		return Build{}, mapError(ctx, opRead, "get build "+strconv.FormatInt(int64(id), 10), err)
	}
	return buildFromRow(b), nil
}

// ListAppBuilds returns the builds filter selects, newest first: limit rows
// at most (0 means DefaultPageSize, at most MaxPageSize). It returns the
// first page of ListAppBuildsPaged; use that to walk all of them.
func (s *Service) ListAppBuilds(ctx context.Context, filter BuildFilter, limit int) ([]Build, error) {
	p, err := s.ListAppBuildsPaged(ctx, filter, PageRequest{Size: limit})
	return p.Items, err
}

// ListAppBuildsPaged returns one page of the builds filter selects, newest
// first.
func (s *Service) ListAppBuildsPaged(ctx context.Context, filter BuildFilter, page PageRequest) (Page[Build], error) {
	const op = "list app builds"
	appID := filter.AppID
	if err := checkID(op, "app", int64(appID)); err != nil {
		return Page[Build]{}, err
	}
	size, err := pageSize(op, page.Size)
	if err != nil {
		return Page[Build]{}, err
	}
	scope := scopeOf("builds", strconv.FormatInt(int64(appID), 10))
	pos, err := s.cursors.startPosition(op, scope, page.Cursor, false)
	if err != nil {
		return Page[Build]{}, err
	}
	rows, err := listRows(ctx, s.conn, size+1, scanBuild, buildFromRow, dbsqlc.ListAppBuildsPaged, int64(appID), pos.at, pos.id, int32(size+1))
	if err != nil {
		return Page[Build]{}, mapError(ctx, opRead, op, err)
	}
	return finishPage(s.cursors, scope, rows, size, func(b Build) position { return position{b.CreatedAt, int64(b.ID)} }), nil
}

// UpdateBuildStatus moves a build to status to. The lifecycle is
//
//	pending     -> in_progress | canceled
//	in_progress -> succeeded | failed | canceled
//
// started_at is set when the build starts, finished_at when it ends. Asking
// for the status the build already has returns it unchanged (safe to retry).
// An illegal move returns a *TransitionError (ErrInvalidTransition); a
// missing build ErrNotFound. changed reports whether this call moved the
// build; it is false when the build already had status to.
func (s *Service) UpdateBuildStatus(ctx context.Context, id BuildID, to BuildStatus) (b Build, changed bool, err error) {
	op := "update build " + strconv.FormatInt(int64(id), 10) + " status"
	if !to.Valid() {
		return Build{}, false, invalidArg(op, "unknown build status %q", truncate(string(to)))
	}
	row, err := s.q.UpdateBuildStatus(ctx, dbsqlc.UpdateBuildStatusParams{ID: int64(id), NewStatus: string(to)})
	if err == nil {
		return buildFromRow(row), true, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return Build{}, false, mapError(ctx, opWrite, op, err)
	}
	// The guard matched nothing: tell a missing build, a repeated
	// transition and an illegal one apart.
	cur, err := s.q.GetBuild(ctx, int64(id))
	switch {
	case err != nil:
		return Build{}, false, mapError(ctx, opRead, op, err)
	case BuildStatus(cur.Status) == to:
		return buildFromRow(cur), false, nil
	}
	return Build{}, false, &TransitionError{Entity: EntityBuild, ID: int64(id), From: BuildStatus(cur.Status), To: to}
}

// GetLatestSuccessfulBuild returns an app's newest succeeded build, or
// ErrNotFound when it has none.
func (s *Service) GetLatestSuccessfulBuild(ctx context.Context, appID AppID) (Build, error) {
	b, err := s.q.GetLatestSuccessfulBuild(ctx, int64(appID))
	if err != nil {
		return Build{}, mapError(ctx, opRead, "get latest successful build of app "+strconv.FormatInt(int64(appID), 10), err)
	}
	return buildFromRow(b), nil
}

// DeleteBuild deletes a build. A build that a deployment references is kept
// and ErrInUse returned; a missing build gives ErrNotFound.
func (s *Service) DeleteBuild(ctx context.Context, id BuildID) error {
	op := "delete build " + strconv.FormatInt(int64(id), 10)
	n, err := s.q.DeleteBuild(ctx, int64(id))
	if err != nil {
		return mapError(ctx, opDelete, op, err)
	}
	if n == 0 {
		return notFound(op, "no such build")
	}
	return nil
}
