// Package deploydb is the typed PostgreSQL data layer of a deployment
// platform: apps, their builds, and deployments of those builds to
// environments.
//
// The schema is declared in schema.hcl and applied by versioned Atlas
// migrations embedded in package db; the SQL lives in queries/ and is
// compiled by sqlc into the internal package dbsqlc. This package is the
// hand-written public surface on top: it has its own documented row types,
// validates input, runs multi-statement work in transactions, maps
// PostgreSQL errors to typed errors and hands out opaque keyset cursors.
//
// # Opening
//
//	svc, err := deploydb.Open(ctx, os.Getenv("DATABASE_URL"))
//	if err != nil { ... }
//	defer svc.Close()
//
// Open builds a pgx pool (10 connections, 30 s connect timeout, 10 min idle
// time by default; see the With… options). New runs on a DB you already
// have: a *pgxpool.Pool, a *pgx.Conn, or a pgx.Tx of your own, in which case
// every call joins that transaction and InTx is a savepoint of it;
// Service.WithTx does the same for an existing Service, and package txhttp
// carries one transaction per HTTP request.
// Apply the schema first with db.Migrate (or `deploydb migrate up`, or
// WithAutoMigrate): Open refuses a database whose applied migrations are
// behind the binary's or include versions it does not know (see
// SchemaCheck and WithSchemaCheck for rolling upgrades).
//
// # Calls
//
// Row types (App, Build, Deployment, Operation) are plain structs; a NULL
// column is the zero value ("" or the zero time.Time). Ids are distinct
// types (AppID, BuildID, DeploymentID, OperationID). Creates and filters
// take a params struct; creates return (row, created, err) and transitions
// (row, changed, err). CreateBuild, CreateDeployment and
// CreateDeploymentWithTargets accept an IdempotencyKey: a repeat with the
// same key and arguments returns the first row with created false, other
// arguments are ErrConflict, so a create whose reply was lost can be
// repeated. The empty environment means "not given": calls that need an
// environment refuse it, and DeploymentFilter lists every environment for
// it (AnyEnvironment). Filter bounds are rounded up to the microsecond
// (After inclusive, Before exclusive); stored timestamps must lie after
// 0001-01-01T00:00:00Z and before 9999-12-31T23:59:59Z.
//
// # Lifecycles
//
// Builds and deployments move through fixed lifecycles, each transition one
// guarded UPDATE, so two callers racing for the same row cannot both win:
//
//	build:      pending -> in_progress | canceled
//	            in_progress -> succeeded | failed | canceled
//	deployment: pending -> in_progress | canceled
//	            in_progress -> deployed | failed | canceled
//
// started_at is set when a row enters in_progress and never changes after;
// finished_at when it reaches a terminal status. Asking for the status a row
// already has returns the row unchanged with changed false, so retries are
// safe. At most one
// deployment per app and environment is in_progress at a time.
//
// # Rollouts
//
// A deployment created with CreateDeploymentWithTargets has one operation
// per target. Operations move through their own state machine (see
// TransitionOperation). Workers take pending ones with ClaimOperations (or
// ClaimNextOperation), which never hands the same operation to two workers
// and never fails because of another worker; each claim holds a lease with
// a fencing token (Operation.Lease) that Heartbeat extends and MoveOperation
// carries, and RescueExpiredOperations returns the operations of workers
// that died to pending. A failed or stopped operation halts its deployment
// (StopDeployment, CancelDeployment, ResumeDeployment, RetryDeployment).
//
// In the same statement as every operation change, the database updates the
// deployment's per-state counts (Deployment.Operations) and derives its
// status from them, by the rule DeriveDeploymentStatus mirrors:
//
//	any running, waiting_for_cutover or cutting_over  in_progress
//	any failed                                        failed
//	all completed                                     deployed
//	all pending                                       pending
//	any stopped or reverted                           canceled
//	otherwise (pending and completed only)            in_progress
//
// (the first rule that applies wins). Such a deployment refuses manual
// status changes with ErrConflict.
//
// # Errors
//
// Every failure of every exported function and method matches exactly one
// of the sentinel errors with errors.Is (or, when the caller's context
// ended, its context error), and keeps the driver error (*pgconn.PgError,
// pgx.ErrNoRows) in the chain for errors.As:
//
//	ErrNotFound           the row does not exist
//	ErrConflict           duplicate app name; a second in_progress deployment; a reused idempotency key
//	ErrInvalidTransition  the lifecycle forbids it; the error is a *TransitionError{Entity, ID, From, To}
//	ErrInvalidArgument    bad name, option, limit, cursor, timestamp or filter (*FilterError); an undeployable build
//	ErrInUse              delete refused: a deployment references the build
//	ErrRetryable          serialization failure or deadlock that outlived InTx's retries
//	ErrTimeout            lock_timeout or statement_timeout
//	ErrUnavailable        server unreachable, connection lost or server shutting down
//	ErrTxAborted          the transaction failed earlier, or has ended
//	ErrSchemaMismatch     Open refused the database's migrations (*SchemaError), or WithAutoMigrate failed
//	ErrInternal           any other database error, e.g. in the caller's own SQL
//	ErrLeaseLost          a worker's move or heartbeat whose lease was lost (fencing token changed)
//
// SQL of the caller's own run through Conn is mapped the same way. Errors
// never contain the database password.
//
// # Paging
//
// List methods ending in Paged, and ListDeployments, return a Page with at
// most PageRequest.Size rows (default 20, max 100; never a nil Items) and an
// opaque NextCursor ("" on the last page). Cursors are keyset positions (sort value and id),
// signed and bound to the list, app and filter that produced them: a tampered
// or foreign cursor is refused with ErrInvalidArgument. Walking all pages in
// created_at order returns every row that existed when the walk began exactly
// once, even while rows are being inserted. Every page is one index range
// scan, so deep pages cost what the first page costs.
package deploydb
