-- W2 control: the same page found with OFFSET.
-- pgbench -M prepared -D app=ID -D off=N
SELECT id, app_id, build_id, environment, status, created_at, updated_at, started_at, finished_at FROM deployments
WHERE app_id = :app
ORDER BY created_at DESC, id DESC
LIMIT 51 OFFSET :off;
