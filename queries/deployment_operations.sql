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

-- name: ListDeploymentOperationStates :many
-- ListDeploymentOperationStates returns what the deployment's derived status
-- is computed from. Served by deployment_operations_deployment_id_target_key.
SELECT state, started_at, finished_at FROM deployment_operations
WHERE deployment_id = @deployment_id;

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
-- operation state machine allows it from the current state; it returns no
-- row otherwise. A retry (failed -> pending) adds one to attempt and keeps
-- last_error; moving back to pending releases the claim; started_at is set
-- once; finished_at is set on completed, failed, stopped and reverted and
-- cleared on pending.
UPDATE deployment_operations
SET state       = @new_state::text,
    attempt     = attempt + CASE WHEN state = 'failed' AND @new_state::text = 'pending' THEN 1 ELSE 0 END,
    last_error  = CASE WHEN @new_state::text = 'failed' THEN sqlc.narg('last_error')::text ELSE last_error END,
    claimed_by  = CASE WHEN @new_state::text = 'pending' THEN NULL ELSE claimed_by END,
    claimed_at  = CASE WHEN @new_state::text = 'pending' THEN NULL ELSE claimed_at END,
    started_at  = CASE WHEN @new_state::text = 'running' THEN COALESCE(started_at, now()) ELSE started_at END,
    finished_at = CASE
                    WHEN @new_state::text IN ('completed', 'failed', 'stopped', 'reverted') THEN GREATEST(now(), started_at)
                    WHEN @new_state::text = 'pending' THEN NULL
                    ELSE finished_at
                  END,
    updated_at  = now()
WHERE id = @id
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
RETURNING *;

-- name: ClaimNextOperation :one
-- ClaimNextOperation moves the oldest pending operation on a target to
-- running and records the worker. FOR UPDATE SKIP LOCKED lets many workers
-- claim at once without ever taking the same row; operations whose
-- deployment cannot start (another deployment of the same app and
-- environment is in progress) are passed over. Served by
-- deployment_operations_target_state_created_at_id_idx and
-- deployments_one_in_progress_key.
UPDATE deployment_operations
SET state      = 'running',
    claimed_by = @worker::text,
    claimed_at = now(),
    started_at = COALESCE(started_at, now()),
    updated_at = now()
WHERE state = 'pending'
  AND id = (
        SELECT o.id
        FROM deployment_operations o
        JOIN deployments d ON d.id = o.deployment_id
        WHERE o.target = @target AND o.state = 'pending'
          AND NOT EXISTS (
                SELECT 1 FROM deployments busy
                WHERE busy.app_id = d.app_id AND busy.environment = d.environment
                  AND busy.status = 'in_progress' AND busy.id <> d.id)
        ORDER BY o.created_at, o.id
        LIMIT 1
        FOR UPDATE OF o SKIP LOCKED)
RETURNING *;

-- name: DeleteDeploymentOperations :execrows
-- DeleteDeploymentOperations deletes every operation of a deployment and
-- returns how many were deleted.
DELETE FROM deployment_operations
WHERE deployment_id = @deployment_id;

-- name: HasDeploymentOperations :one
-- HasDeploymentOperations reports whether a deployment's status is derived
-- from operations.
SELECT EXISTS (SELECT 1 FROM deployment_operations WHERE deployment_id = @deployment_id);
