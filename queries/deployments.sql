-- name: CreateDeployment :one
-- CreateDeployment inserts a pending deployment of a build, but only if the
-- build belongs to the app and has succeeded, and the idempotency key (if
-- any) is new for the app; otherwise it returns no row and the caller reads
-- the key's deployment or the build to say why. In the same statement it
-- stops the pending operations of every older deployment of the app and
-- environment that is not in progress: the new deployment supersedes them
-- (GitLab's "prevent outdated deployment jobs"). Lock order: the app row
-- (FOR KEY SHARE, before anything else), then those operations
-- ((deployment_id, target) order), then their deployments (the counting
-- trigger). The operations are found from the app's deployments, each set
-- computed once (ARRAY): no plan, generic or not, reads the pending
-- operations of other apps once per deployment. Only a pending, failed or
-- canceled deployment can hold pending operations without being in
-- progress (deployed means all completed), so the deployments are found
-- through deployments_app_id_status_created_at_id_idx, not the app's
-- deployed history.
WITH app AS (
    SELECT a.id FROM apps a WHERE a.id = @app_id FOR KEY SHARE
), ins AS (
    INSERT INTO deployments (app_id, build_id, environment, idempotency_key)
    SELECT b.app_id, b.id, @environment::text, sqlc.narg('idempotency_key')::text
    FROM builds b
    JOIN app ON app.id = b.app_id
    WHERE b.id = @build_id AND b.app_id = @app_id AND b.status = 'succeeded'
    ON CONFLICT (app_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING *
), superseded AS (
    UPDATE deployment_operations op
    SET state       = 'stopped',
        finished_at = GREATEST(now(), op.started_at),
        updated_at  = now()
    WHERE op.state = 'pending' AND op.id = ANY (ARRAY(
        SELECT l.id FROM deployment_operations l
        WHERE EXISTS (SELECT 1 FROM ins) AND l.state = 'pending'
          AND l.deployment_id = ANY (ARRAY(
                SELECT d.id FROM deployments d
                WHERE d.app_id = @app_id AND d.environment = @environment::text
                  AND d.status IN ('pending', 'failed', 'canceled') AND d.ops_pending > 0))
        ORDER BY l.deployment_id, l.target
        FOR UPDATE OF l))
    RETURNING op.id
)
SELECT id, app_id, build_id, environment, status, created_at, updated_at, started_at, finished_at, idempotency_key,
       ops_pending, ops_running, ops_waiting_for_cutover, ops_cutting_over, ops_completed, ops_failed, ops_stopped, ops_reverted, canceled_at
FROM ins;

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
  AND ops_pending + ops_running + ops_waiting_for_cutover + ops_cutting_over
    + ops_completed + ops_failed + ops_stopped + ops_reverted = 0
RETURNING *;

-- name: DeleteDeployment :execrows
-- DeleteDeployment deletes a deployment with its operations and returns the
-- number deleted (0 or 1). It locks the operations (target order) before
-- the deployment row, the lock order of every statement that touches both,
-- so it cannot deadlock with claims and moves of the same operations.
WITH locked AS (
    SELECT o.id FROM deployment_operations o
    WHERE o.deployment_id = @id
    ORDER BY o.target
    FOR UPDATE
)
DELETE FROM deployments
WHERE deployments.id = @id AND (SELECT count(*) FROM locked) >= 0;

-- name: LockDeploymentApp :execrows
-- LockDeploymentApp locks the app of a deployment FOR KEY SHARE: the first
-- lock of a transaction that updates the deployment row twice
-- (CancelDeployment). The second update re-checks the deployment's foreign
-- key, since the row's current version is the transaction's own, and that
-- check locks the app row; taking it first keeps the lock order (app,
-- operations, deployments), which DeleteApp relies on.
SELECT a.id FROM apps a
WHERE a.id = (SELECT d.app_id FROM deployments d WHERE d.id = @id)
FOR KEY SHARE;

-- name: SetDeploymentCanceled :one
-- SetDeploymentCanceled makes a deployment's rollout final (CancelDeployment):
-- no resume or retry after it. Run after its operations were stopped, in the
-- same transaction.
UPDATE deployments
SET canceled_at = COALESCE(canceled_at, now()),
    updated_at  = now()
WHERE id = @id
RETURNING *;

-- name: GetDeploymentResumeBlock :one
-- GetDeploymentResumeBlock says why a deployment's operations may not go back
-- to pending: it was canceled, or a newer deployment of the same app and
-- environment exists (the id of the newest, or 0). Newer means later in
-- (created_at, id) order, as superseding and claims read it: one step of
-- deployments_app_id_environment_created_at_id_idx, backwards.
SELECT d.canceled_at IS NOT NULL AS canceled,
       COALESCE((SELECT n.id FROM deployments n
                 WHERE n.app_id = d.app_id AND n.environment = d.environment
                   AND (n.created_at, n.id) > (d.created_at, d.id)
                 ORDER BY n.created_at DESC, n.id DESC
                 LIMIT 1), 0)::bigint AS newer_id
FROM deployments d
WHERE d.id = @id;
