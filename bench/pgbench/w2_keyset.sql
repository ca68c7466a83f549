-- W2: one keyset page of 50 (and the look-ahead row) after a position
-- (queries/deployments.sql ListAppDeploymentsPaged).
-- pgbench -M prepared -D app=ID -D cursor_at=TIMESTAMP -D cursor_id=ID
SELECT id, app_id, build_id, environment, status, created_at, updated_at, started_at, finished_at FROM deployments
WHERE app_id = :app
  AND (created_at, id) < (:cursor_at::timestamptz, :cursor_id::bigint)
ORDER BY created_at DESC, id DESC
LIMIT 51;
