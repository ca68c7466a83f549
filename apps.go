package deploydb

import (
	"context"
	"errors"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/deploydb/deploydb/internal/dbsqlc"
)

// CreateApp creates an app. The name must be a lowercase DNS label
// (ErrInvalidArgument otherwise) and unique (ErrConflict).
func (s *Service) CreateApp(ctx context.Context, p CreateAppParams) (App, error) {
	const op = "create app"
	if err := checkName(op, "app name", p.Name); err != nil {
		return App{}, err
	}
	app, err := s.q.CreateApp(ctx, p.Name)
	if err != nil {
		return App{}, mapError(ctx, opWrite, op, err)
	}
	return appFromRow(app), nil
}

// GetApp returns the app with the given id, or ErrNotFound.
func (s *Service) GetApp(ctx context.Context, id AppID) (App, error) {
	app, err := s.q.GetApp(ctx, int64(id))
	if err != nil {
		return App{}, mapError(ctx, opRead, "get app "+strconv.FormatInt(int64(id), 10), err)
	}
	return appFromRow(app), nil
}

// GetAppByName returns the app with the given name, or ErrNotFound.
func (s *Service) GetAppByName(ctx context.Context, name string) (App, error) {
	const op = "get app by name"
	if err := checkName(op, "app name", name); err != nil {
		return App{}, err
	}
	app, err := s.q.GetAppByName(ctx, name)
	if err != nil {
		return App{}, mapError(ctx, opRead, op, err)
	}
	return appFromRow(app), nil
}

// ListAppsPaged returns one page of apps, newest first.
func (s *Service) ListAppsPaged(ctx context.Context, page PageRequest) (Page[App], error) {
	const op = "list apps"
	size, err := pageSize(op, page.Size)
	if err != nil {
		return Page[App]{}, err
	}
	scope := scopeOf("apps")
	pos, err := s.cursors.startPosition(op, scope, page.Cursor, false)
	if err != nil {
		return Page[App]{}, err
	}
	rows, err := listRows(ctx, s.conn, size+1, scanApp, appFromRow, dbsqlc.ListAppsPaged, pos.at, pos.id, int32(size+1))
	if err != nil {
		return Page[App]{}, mapError(ctx, opRead, op, err)
	}
	return finishPage(s.cursors, scope, rows, size, func(a App) position { return position{a.CreatedAt, int64(a.ID)} }), nil
}

// DeleteApp deletes an app together with its builds, deployments and
// operations. It returns ErrNotFound when there is no such app.
//
// It is one transaction of three statements, in the lock order of every
// statement: the app row (which stops new deployments of the app), then the
// operations of its deployments, then the delete, whose cascade reaches
// the deployments with their operations already held; so it does not
// deadlock with claims, moves, creates or deletes of the app's rollouts.
func (s *Service) DeleteApp(ctx context.Context, id AppID) error {
	op := "delete app " + strconv.FormatInt(int64(id), 10)
	err := s.InTx(ctx, func(tx *Service) error {
		if _, err := tx.q.LockAppForDelete(ctx, int64(id)); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return notFound(op, "no such app")
			}
			return mapError(ctx, opDelete, op, err)
		}
		if _, err := tx.q.LockAppOperations(ctx, int64(id)); err != nil {
			return mapError(ctx, opDelete, op, err)
		}
		n, err := tx.q.DeleteApp(ctx, int64(id))
		if err != nil {
			return mapError(ctx, opDelete, op, err)
		}
		if n == 0 {
			return notFound(op, "no such app")
		}
		return nil
	})
	return err
}
