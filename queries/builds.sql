-- name: CreateBuild :one
-- CreateBuild inserts a pending build of an app. With an idempotency key the
-- app has used already it inserts nothing and returns no row; the caller
-- then reads the first build (GetBuildByIdempotencyKey). Served by
-- builds_app_id_idempotency_key_key.
INSERT INTO builds (app_id, source_version, idempotency_key)
VALUES (@app_id, sqlc.narg('source_version'), sqlc.narg('idempotency_key'))
ON CONFLICT (app_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
RETURNING *;

-- name: GetBuildByIdempotencyKey :one
-- GetBuildByIdempotencyKey returns the build an app's CreateBuild call with
-- this key made. Served by builds_app_id_idempotency_key_key.
SELECT * FROM builds
WHERE app_id = @app_id AND idempotency_key = @idempotency_key;

-- name: CreateBuilds :copyfrom
-- CreateBuilds bulk-inserts builds with COPY (imports and seeding). The
-- table's CHECK constraints still apply to every row.
INSERT INTO builds (app_id, source_version, status, created_at, updated_at, started_at, finished_at)
VALUES (@app_id, @source_version, @status, @created_at, @updated_at, @started_at, @finished_at);

-- name: GetBuild :one
-- GetBuild returns the build with the given id (primary key).
SELECT * FROM builds
WHERE id = @id;

-- name: ListAppBuildsPaged :many
-- ListAppBuildsPaged returns one keyset page of an app's builds, newest
-- first, strictly after the (created_at, id) cursor. Served by
-- builds_app_id_created_at_id_idx.
SELECT * FROM builds
WHERE app_id = @app_id
  AND (created_at, id) < (@cursor_created_at::timestamptz, @cursor_id::bigint)
ORDER BY created_at DESC, id DESC
LIMIT @page_size;

-- name: UpdateBuildStatus :one
-- UpdateBuildStatus moves a build to status new_status if, and only if, the
-- build lifecycle (pending -> in_progress | canceled; in_progress ->
-- succeeded | failed | canceled) allows it from the current status; it returns no row
-- otherwise (the caller then tells "not found" from "illegal transition").
-- started_at is set once when the build starts; finished_at when it reaches a
-- terminal status.
UPDATE builds
SET status      = @new_status::text,
    updated_at  = now(),
    started_at  = CASE WHEN @new_status::text = 'in_progress' THEN COALESCE(started_at, now()) ELSE started_at END,
    finished_at = CASE WHEN @new_status::text IN ('succeeded', 'failed', 'canceled') THEN GREATEST(now(), started_at) ELSE finished_at END
WHERE id = @id
  AND (status, @new_status::text) IN (
        VALUES ('pending', 'in_progress'),
               ('pending', 'canceled'),
               ('in_progress', 'succeeded'),
               ('in_progress', 'failed'),
               ('in_progress', 'canceled'))
RETURNING *;

-- name: GetLatestSuccessfulBuild :one
-- GetLatestSuccessfulBuild returns an app's newest succeeded build. Served by
-- builds_app_id_status_created_at_id_idx.
SELECT * FROM builds
WHERE app_id = @app_id AND status = 'succeeded'
ORDER BY created_at DESC, id DESC
LIMIT 1;

-- name: DeleteBuild :execrows
-- DeleteBuild deletes a build and returns the number deleted (0 or 1). A build
-- that a deployment references is kept: the foreign key refuses (23503).
DELETE FROM builds
WHERE id = @id;
