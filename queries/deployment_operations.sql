-- name: CreateDeploymentOperations :many
-- CreateDeploymentOperations inserts one pending operation per target of a
-- deployment, in one statement.
INSERT INTO deployment_operations (deployment_id, target)
SELECT @deployment_id::bigint, t
FROM unnest(@targets::text[]) AS t
RETURNING *;

-- name: GetOperation :one
-- GetOperation returns the operation with the given id (primary key).
SELECT * FROM deployment_operations
WHERE id = @id;

-- name: GetOperationByDeploymentAndTarget :one
-- GetOperationByDeploymentAndTarget returns a deployment's operation on one
-- target. Served by deployment_operations_deployment_id_target_key.
SELECT * FROM deployment_operations
WHERE deployment_id = @deployment_id AND target = @target;

-- name: ListDeploymentOperations :many
-- ListDeploymentOperations returns a deployment's operations ordered by
-- target. Served by deployment_operations_deployment_id_target_key.
SELECT * FROM deployment_operations
WHERE deployment_id = @deployment_id
ORDER BY target;

-- name: ListActiveOperationsByTarget :many
-- ListActiveOperationsByTarget returns the operations under way on a target
-- (running, waiting_for_cutover, cutting_over), oldest first, at most
-- max_rows. Each state is one ordered range of
-- deployment_operations_target_state_created_at_id_idx; UNION ALL lets the
-- planner merge the three ranges in order instead of sorting.
SELECT * FROM (
    (SELECT r.* FROM deployment_operations r
     WHERE r.target = @target AND r.state = 'running'
     ORDER BY r.created_at, r.id LIMIT @max_rows)
    UNION ALL
    (SELECT w.* FROM deployment_operations w
     WHERE w.target = @target AND w.state = 'waiting_for_cutover'
     ORDER BY w.created_at, w.id LIMIT @max_rows)
    UNION ALL
    (SELECT c.* FROM deployment_operations c
     WHERE c.target = @target AND c.state = 'cutting_over'
     ORDER BY c.created_at, c.id LIMIT @max_rows)
) AS active
ORDER BY created_at, id
LIMIT @max_rows;

-- name: TransitionOperation :one
-- TransitionOperation moves an operation to new_state if, and only if, the
-- operation state machine allows it from the current state and, when token
-- is given, the operation's lease_token still equals it (a fenced move of
-- the claiming worker); it returns no row otherwise. A retry (failed ->
-- pending) adds one to attempt and keeps last_error; moving back to pending
-- (retry, resume) is refused for a canceled deployment and for one that a
-- newer deployment of the same app and environment has superseded. Moving
-- to pending releases the claim; leaving the active states ends the lease;
-- started_at is set once; finished_at is set on completed, failed, stopped
-- and reverted and cleared on pending. The deployment's counts and status
-- follow in the same statement (schema_triggers.sql).
UPDATE deployment_operations
SET state            = @new_state::text,
    attempt          = attempt + CASE WHEN state = 'failed' AND @new_state::text = 'pending' THEN 1 ELSE 0 END,
    last_error       = CASE WHEN @new_state::text = 'failed' THEN sqlc.narg('last_error')::text ELSE last_error END,
    claimed_by       = CASE WHEN @new_state::text = 'pending' THEN NULL ELSE claimed_by END,
    claimed_at       = CASE WHEN @new_state::text = 'pending' THEN NULL ELSE claimed_at END,
    lease_token      = lease_token + CASE WHEN state = 'pending' AND @new_state::text = 'running' THEN 1 ELSE 0 END,
    lease_expires_at = CASE
                         WHEN @new_state::text NOT IN ('running', 'waiting_for_cutover', 'cutting_over') THEN NULL
                         WHEN state = 'pending' THEN now() + @lease::interval
                         ELSE lease_expires_at
                       END,
    started_at       = CASE WHEN @new_state::text = 'running' THEN COALESCE(started_at, now()) ELSE started_at END,
    finished_at      = CASE
                         WHEN @new_state::text IN ('completed', 'failed', 'stopped', 'reverted') THEN GREATEST(now(), started_at)
                         WHEN @new_state::text = 'pending' THEN NULL
                         ELSE finished_at
                       END,
    updated_at       = now()
WHERE deployment_operations.id = @id
  AND (sqlc.narg('token')::bigint IS NULL OR lease_token = sqlc.narg('token')::bigint)
  AND (state, @new_state::text) IN (
        VALUES ('pending', 'running'),
               ('pending', 'stopped'),
               ('running', 'waiting_for_cutover'),
               ('running', 'completed'),
               ('running', 'failed'),
               ('running', 'stopped'),
               ('waiting_for_cutover', 'cutting_over'),
               ('waiting_for_cutover', 'failed'),
               ('waiting_for_cutover', 'stopped'),
               ('cutting_over', 'completed'),
               ('cutting_over', 'failed'),
               ('completed', 'reverted'),
               ('failed', 'pending'),
               ('stopped', 'pending'))
  AND (@new_state::text <> 'pending' OR NOT EXISTS (
        SELECT 1 FROM deployments d
        WHERE d.id = deployment_operations.deployment_id
          AND (d.canceled_at IS NOT NULL OR EXISTS (
                SELECT 1 FROM deployments n
                WHERE n.app_id = d.app_id AND n.environment = d.environment
                  AND (n.created_at, n.id) > (d.created_at, d.id)))))
RETURNING *;

-- name: ClaimOperations :many
-- ClaimOperations moves up to max_rows of the oldest pending operations on a
-- target to running, records the worker, gives each a lease of lease and a
-- new fencing token. FOR UPDATE SKIP LOCKED lets many workers claim at once
-- without ever taking the same row. Passed over: operations of a halted
-- deployment (a failed or stopped operation), of a deployment that has not
-- started and is outdated (a newer deployment of its app and environment
-- exists), and of a deployment that cannot start because another deployment
-- of the same app and environment is in progress or being started by a
-- transaction that has not committed (it
-- holds the app and environment's advisory lock, taken here with
-- pg_try_advisory_xact_lock, which never waits). Served by
-- deployment_operations_target_state_created_at_id_idx and
-- deployments_one_in_progress_key. The deployments' counts and status follow
-- in the same statement (schema_triggers.sql).
-- deploydb:review-allow-scan the claim walks the target's pending operations oldest first and passes over those of deployments that cannot start yet (waiting for their app and environment's turn, or outdated); each costs a primary-key lookup and one or two index probes, so its buffers grow with such deployments that have work on the target (the review's seed loads many per app and environment; the service's superseding leaves at most one waiting)
WITH picked AS (
    SELECT o.id
    FROM deployment_operations o
    JOIN deployments d ON d.id = o.deployment_id
    WHERE o.target = @target AND o.state = 'pending'
      AND d.ops_failed = 0 AND d.ops_stopped = 0
      AND (d.status = 'in_progress'
           OR (NOT EXISTS (
                 SELECT 1 FROM deployments busy
                 WHERE busy.app_id = d.app_id AND busy.environment = d.environment
                   AND busy.status = 'in_progress')
               AND NOT EXISTS (
                 SELECT 1 FROM deployments newer
                 WHERE newer.app_id = d.app_id AND newer.environment = d.environment
                   AND (newer.created_at, newer.id) > (d.created_at, d.id))
               -- The CASE refers to the operation as well, so the lock is
               -- tried at the join, for this operation's deployment only; as
               -- a filter on deployments alone, a plan scanning deployments
               -- would try (and hold) the lock of every deployment it read.
               AND CASE WHEN d.id = o.deployment_id THEN pg_try_advisory_xact_lock(
                 ('x' || left(md5('deploydb:app/' || d.app_id::text || '/env/' || d.environment), 16))::bit(64)::bigint)
                   ELSE false END))
    ORDER BY o.created_at, o.id
    LIMIT @max_rows
    FOR UPDATE OF o SKIP LOCKED
)
UPDATE deployment_operations op
SET state            = 'running',
    claimed_by       = @worker::text,
    claimed_at       = now(),
    lease_token      = op.lease_token + 1,
    lease_expires_at = now() + @lease::interval,
    started_at       = COALESCE(op.started_at, now()),
    updated_at       = now()
FROM picked
WHERE op.id = picked.id AND op.state = 'pending'
RETURNING op.*;

-- name: HeartbeatOperation :one
-- HeartbeatOperation extends the lease of an active operation to now() +
-- lease if the caller's token still matches; no row otherwise. It does not
-- touch the deployment.
UPDATE deployment_operations
SET lease_expires_at = now() + @lease::interval,
    updated_at       = now()
WHERE id = @id AND lease_token = @token
  AND state IN ('running', 'waiting_for_cutover', 'cutting_over')
RETURNING *;

-- name: RescueExpiredOperations :many
-- RescueExpiredOperations takes up to max_rows active operations whose lease
-- has ended, earliest expiry first, and returns each to pending (attempt + 1)
-- or, once it has had max_attempts attempts, fails it; last_error says
-- whose lease expired. The fencing token is raised, so the lost worker's
-- later moves change nothing. SKIP LOCKED lets every replica run it at once.
-- Served by deployment_operations_lease_expires_at_idx.
WITH expired AS (
    SELECT e.id FROM deployment_operations e
    WHERE e.lease_expires_at < now()
    ORDER BY e.lease_expires_at
    LIMIT @max_rows
    FOR UPDATE SKIP LOCKED
)
UPDATE deployment_operations op
SET state            = CASE WHEN op.attempt >= @max_attempts::integer THEN 'failed' ELSE 'pending' END,
    attempt          = op.attempt + CASE WHEN op.attempt >= @max_attempts::integer THEN 0 ELSE 1 END,
    last_error       = left(format('lease of worker %s expired at %s in state %s (attempt %s of %s)',
                          COALESCE(op.claimed_by, '(none)'), op.lease_expires_at, op.state, op.attempt, @max_attempts::integer), 4096),
    claimed_by       = CASE WHEN op.attempt >= @max_attempts::integer THEN op.claimed_by ELSE NULL END,
    claimed_at       = CASE WHEN op.attempt >= @max_attempts::integer THEN op.claimed_at ELSE NULL END,
    lease_token      = op.lease_token + 1,
    lease_expires_at = NULL,
    finished_at      = CASE WHEN op.attempt >= @max_attempts::integer THEN GREATEST(now(), op.started_at) ELSE NULL END,
    updated_at       = now()
FROM expired
WHERE op.id = expired.id AND op.lease_expires_at < now()
RETURNING op.*;

-- name: StopDeploymentOperations :many
-- StopDeploymentOperations stops every pending, running and
-- waiting_for_cutover operation of a deployment in one statement (locking
-- them in target order) and ends their leases; cutting_over
-- operations finish on their own. The deployment's counts and status follow
-- in the same statement.
WITH locked AS (
    SELECT l.id FROM deployment_operations l
    WHERE l.deployment_id = @deployment_id AND l.state IN ('pending', 'running', 'waiting_for_cutover')
    ORDER BY l.target
    FOR UPDATE
)
UPDATE deployment_operations op
SET state            = 'stopped',
    lease_token      = op.lease_token + CASE WHEN op.state = 'pending' THEN 0 ELSE 1 END,
    lease_expires_at = NULL,
    finished_at      = GREATEST(now(), op.started_at),
    updated_at       = now()
FROM locked
WHERE op.id = locked.id AND op.state IN ('pending', 'running', 'waiting_for_cutover')
RETURNING op.id;

-- name: RequeueDeploymentOperations :many
-- RequeueDeploymentOperations moves every operation of a deployment that is
-- in from_state (stopped: resume; failed: retry, attempt + 1, last_error
-- kept) back to pending in one statement, unless the deployment was
-- canceled or a newer deployment of the same app and environment exists.
WITH locked AS (
    SELECT l.id FROM deployment_operations l
    WHERE l.deployment_id = @deployment_id AND l.state = @from_state::text
    ORDER BY l.target
    FOR UPDATE
)
UPDATE deployment_operations op
SET state       = 'pending',
    attempt     = op.attempt + CASE WHEN op.state = 'failed' THEN 1 ELSE 0 END,
    claimed_by  = NULL,
    claimed_at  = NULL,
    finished_at = NULL,
    updated_at  = now()
FROM locked
WHERE op.id = locked.id AND op.state = @from_state::text AND @from_state::text IN ('stopped', 'failed')
  AND NOT EXISTS (
        SELECT 1 FROM deployments d
        WHERE d.id = @deployment_id
          AND (d.canceled_at IS NOT NULL OR EXISTS (
                SELECT 1 FROM deployments n
                WHERE n.app_id = d.app_id AND n.environment = d.environment
                  AND (n.created_at, n.id) > (d.created_at, d.id))))
RETURNING op.id;

-- name: DeleteDeploymentOperations :execrows
-- DeleteDeploymentOperations deletes every operation of a deployment
-- (locked in target order first) and returns how many were deleted.
WITH locked AS (
    SELECT l.id FROM deployment_operations l
    WHERE l.deployment_id = @deployment_id
    ORDER BY l.target
    FOR UPDATE
)
DELETE FROM deployment_operations op
USING locked
WHERE op.id = locked.id;

-- name: HasDeploymentOperations :one
-- HasDeploymentOperations reports whether a deployment's status is derived
-- from operations.
SELECT EXISTS (SELECT 1 FROM deployment_operations WHERE deployment_id = @deployment_id);
