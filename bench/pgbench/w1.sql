-- W1: GetDeploymentWithBuild by random id (queries/deployments.sql).
-- pgbench -M prepared -D max_id=N
\set id random(1, :max_id)
SELECT deployments.id, deployments.app_id, deployments.build_id, deployments.environment, deployments.status, deployments.created_at, deployments.updated_at, deployments.started_at, deployments.finished_at, builds.id, builds.app_id, builds.source_version, builds.status, builds.created_at, builds.updated_at, builds.started_at, builds.finished_at
FROM deployments
JOIN builds ON builds.id = deployments.build_id AND builds.app_id = deployments.app_id
WHERE deployments.id = :id;
