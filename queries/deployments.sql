-- name: CreateDeployment :one
-- CreateDeployment inserts a pending deployment of a build, but only if the
-- build belongs to the app and has succeeded, and the idempotency key (if
-- any) is new for the app; otherwise it returns no row and the caller reads
-- the key's deployment or the build to say why.
INSERT INTO deployments (app_id, build_id, environment, idempotency_key)
SELECT b.app_id, b.id, @environment::text, sqlc.narg('idempotency_key')::text
FROM builds b
WHERE b.id = @build_id AND b.app_id = @app_id AND b.status = 'succeeded'
ON CONFLICT (app_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
RETURNING *;

-- name: GetDeploymentByIdempotencyKey :one
-- GetDeploymentByIdempotencyKey returns the deployment an app's
-- CreateDeployment call with this key made. Served by
-- deployments_app_id_idempotency_key_key.
SELECT * FROM deployments
WHERE app_id = @app_id AND idempotency_key = @idempotency_key;

-- name: GetDeployment :one
-- GetDeployment returns the deployment with the given id (primary key).
SELECT * FROM deployments
WHERE id = @id;

-- name: GetDeploymentWithBuild :one
-- GetDeploymentWithBuild returns a deployment together with the build it
-- deploys, in one round trip (two primary-key lookups).
SELECT sqlc.embed(deployments), sqlc.embed(builds)
FROM deployments
JOIN builds ON builds.id = deployments.build_id AND builds.app_id = deployments.app_id
WHERE deployments.id = @id;

-- name: ListAppDeploymentsPaged :many
-- ListAppDeploymentsPaged returns one keyset page of an app's deployments,
-- newest first. Served by deployments_app_id_created_at_id_idx.
SELECT * FROM deployments
WHERE app_id = @app_id
  AND (created_at, id) < (@cursor_created_at::timestamptz, @cursor_id::bigint)
ORDER BY created_at DESC, id DESC
LIMIT @page_size;

-- name: ListAppDeploymentsPagedAsc :many
-- ListAppDeploymentsPagedAsc returns one keyset page of an app's
-- deployments, oldest first. Served by deployments_app_id_created_at_id_idx
-- (backward scan).
SELECT * FROM deployments
WHERE app_id = @app_id
  AND (created_at, id) > (@cursor_created_at::timestamptz, @cursor_id::bigint)
ORDER BY created_at ASC, id ASC
LIMIT @page_size;

-- name: ListEnvironmentDeploymentsPaged :many
-- ListEnvironmentDeploymentsPaged returns one keyset page of an app's
-- deployments to one environment, newest first. Served by
-- deployments_app_id_environment_created_at_id_idx.
SELECT * FROM deployments
WHERE app_id = @app_id AND environment = @environment
  AND (created_at, id) < (@cursor_created_at::timestamptz, @cursor_id::bigint)
ORDER BY created_at DESC, id DESC
LIMIT @page_size;

-- name: ListEnvironmentDeploymentsPagedAsc :many
-- ListEnvironmentDeploymentsPagedAsc is ListEnvironmentDeploymentsPaged,
-- oldest first.
SELECT * FROM deployments
WHERE app_id = @app_id AND environment = @environment
  AND (created_at, id) > (@cursor_created_at::timestamptz, @cursor_id::bigint)
ORDER BY created_at ASC, id ASC
LIMIT @page_size;

-- name: ListStatusDeploymentsPaged :many
-- ListStatusDeploymentsPaged returns one keyset page of an app's deployments
-- in one status, newest first. Served by
-- deployments_app_id_status_created_at_id_idx.
SELECT * FROM deployments
WHERE app_id = @app_id AND status = @status
  AND (created_at, id) < (@cursor_created_at::timestamptz, @cursor_id::bigint)
ORDER BY created_at DESC, id DESC
LIMIT @page_size;

-- name: ListStatusDeploymentsPagedAsc :many
-- ListStatusDeploymentsPagedAsc is ListStatusDeploymentsPaged, oldest first.
SELECT * FROM deployments
WHERE app_id = @app_id AND status = @status
  AND (created_at, id) > (@cursor_created_at::timestamptz, @cursor_id::bigint)
ORDER BY created_at ASC, id ASC
LIMIT @page_size;

-- name: ListUpdatedDeploymentsPaged :many
-- ListUpdatedDeploymentsPaged returns one keyset page of an app's deployments
-- updated in [updated_after, updated_before), most recently updated first.
-- Served by deployments_app_id_updated_at_id_idx.
SELECT * FROM deployments
WHERE app_id = @app_id
  AND updated_at >= @updated_after::timestamptz AND updated_at < @updated_before::timestamptz
  AND (updated_at, id) < (@cursor_updated_at::timestamptz, @cursor_id::bigint)
ORDER BY updated_at DESC, id DESC
LIMIT @page_size;

-- name: ListUpdatedDeploymentsPagedAsc :many
-- ListUpdatedDeploymentsPagedAsc is ListUpdatedDeploymentsPaged, least
-- recently updated first.
SELECT * FROM deployments
WHERE app_id = @app_id
  AND updated_at >= @updated_after::timestamptz AND updated_at < @updated_before::timestamptz
  AND (updated_at, id) > (@cursor_updated_at::timestamptz, @cursor_id::bigint)
ORDER BY updated_at ASC, id ASC
LIMIT @page_size;

-- name: ListFinishedDeploymentsPaged :many
-- ListFinishedDeploymentsPaged returns one keyset page of an app's
-- deployments in one terminal status that finished in [finished_after,
-- finished_before), most recently finished first. Served by
-- deployments_app_id_status_finished_at_id_idx.
SELECT * FROM deployments
WHERE app_id = @app_id AND status = @status
  AND finished_at >= @finished_after::timestamptz AND finished_at < @finished_before::timestamptz
  AND (finished_at, id) < (@cursor_finished_at::timestamptz, @cursor_id::bigint)
ORDER BY finished_at DESC, id DESC
LIMIT @page_size;

-- name: ListFinishedDeploymentsPagedAsc :many
-- ListFinishedDeploymentsPagedAsc is ListFinishedDeploymentsPaged, earliest
-- finished first.
SELECT * FROM deployments
WHERE app_id = @app_id AND status = @status
  AND finished_at >= @finished_after::timestamptz AND finished_at < @finished_before::timestamptz
  AND (finished_at, id) > (@cursor_finished_at::timestamptz, @cursor_id::bigint)
ORDER BY finished_at ASC, id ASC
LIMIT @page_size;

-- name: GetLatestDeployment :one
-- GetLatestDeployment returns the newest deployment of an app to one
-- environment, whatever its status. Served by
-- deployments_app_id_environment_created_at_id_idx.
SELECT * FROM deployments
WHERE app_id = @app_id AND environment = @environment
ORDER BY created_at DESC, id DESC
LIMIT 1;

-- name: ListSuccessfulDeployments :many
-- ListSuccessfulDeployments returns an app's most recently finished deployed
-- deployments, at most max_rows of them. Served by
-- deployments_app_id_status_finished_at_id_idx.
SELECT * FROM deployments
WHERE app_id = @app_id AND status = 'deployed'
ORDER BY finished_at DESC, id DESC
LIMIT @max_rows;

-- name: UpdateDeploymentStatus :one
-- UpdateDeploymentStatus moves a deployment to status new_status if, and
-- only if, the deployment lifecycle (pending -> in_progress | canceled;
-- in_progress -> deployed | failed | canceled) allows it from the current
-- status; it returns no row otherwise, and for a deployment whose status is derived from its
-- operations. Starting a second deployment of the same app and environment
-- violates deployments_one_in_progress_key (23505).
UPDATE deployments
SET status      = @new_status::text,
    updated_at  = now(),
    started_at  = CASE WHEN @new_status::text = 'in_progress' THEN COALESCE(started_at, now()) ELSE started_at END,
    finished_at = CASE WHEN @new_status::text IN ('deployed', 'failed', 'canceled') THEN GREATEST(now(), started_at) ELSE finished_at END
WHERE deployments.id = @id
  AND (status, @new_status::text) IN (
        VALUES ('pending', 'in_progress'),
               ('pending', 'canceled'),
               ('in_progress', 'deployed'),
               ('in_progress', 'failed'),
               ('in_progress', 'canceled'))
  AND NOT EXISTS (SELECT 1 FROM deployment_operations o WHERE o.deployment_id = deployments.id)
RETURNING *;

-- name: DeleteDeployment :execrows
-- DeleteDeployment deletes a deployment and returns the number deleted (0 or
-- 1).
DELETE FROM deployments
WHERE id = @id;

-- name: LockDeployment :one
-- LockDeployment reads a deployment and locks it until the transaction ends,
-- so that its derived status is recomputed by one transaction at a time.
SELECT * FROM deployments
WHERE id = @id
FOR NO KEY UPDATE;

-- name: SetDerivedDeploymentStatus :one
-- SetDerivedDeploymentStatus stores the status and timestamps derived from a
-- deployment's operations (see DeriveDeploymentStatus).
UPDATE deployments
SET status      = @status,
    started_at  = sqlc.narg('started_at'),
    finished_at = sqlc.narg('finished_at'),
    updated_at  = now()
WHERE id = @id
RETURNING *;
