package main

// The statements of the hand-written implementations (raw pgx,
// database/sql, sqlx) and, through the scripts in pgbench/, of pgbench.
// They are the statements of queries/*.sql; the cross-check proves that
// every implementation returns the same rows as the service.

const deploymentCols = `id, app_id, build_id, environment, status, created_at, updated_at, started_at, finished_at`

// sqlGetDeploymentWithBuild is W1 (queries/deployments.sql GetDeploymentWithBuild).
const sqlGetDeploymentWithBuild = `SELECT deployments.id, deployments.app_id, deployments.build_id, deployments.environment, deployments.status, deployments.created_at, deployments.updated_at, deployments.started_at, deployments.finished_at, builds.id, builds.app_id, builds.source_version, builds.status, builds.created_at, builds.updated_at, builds.started_at, builds.finished_at
FROM deployments
JOIN builds ON builds.id = deployments.build_id AND builds.app_id = deployments.app_id
WHERE deployments.id = $1`

// sqlxGetDeploymentWithBuild is W1 with the column aliases sqlx maps onto
// a nested struct.
const sqlxGetDeploymentWithBuild = `SELECT deployments.id, deployments.app_id, deployments.build_id, deployments.environment, deployments.status, deployments.created_at, deployments.updated_at, deployments.started_at, deployments.finished_at,
 builds.id AS "build.id", builds.app_id AS "build.app_id", builds.source_version AS "build.source_version", builds.status AS "build.status", builds.created_at AS "build.created_at", builds.updated_at AS "build.updated_at", builds.started_at AS "build.started_at", builds.finished_at AS "build.finished_at"
FROM deployments
JOIN builds ON builds.id = deployments.build_id AND builds.app_id = deployments.app_id
WHERE deployments.id = $1`

// sqlListAppDeploymentsPaged is W2 (ListAppDeploymentsPaged): a keyset
// page after ($2, $3), newest first.
const sqlListAppDeploymentsPaged = `SELECT ` + deploymentCols + ` FROM deployments
WHERE app_id = $1
  AND (created_at, id) < ($2::timestamptz, $3::bigint)
ORDER BY created_at DESC, id DESC
LIMIT $4`

// sqlListAppDeploymentsOffset is W2's control: the same page found by
// OFFSET.
const sqlListAppDeploymentsOffset = `SELECT ` + deploymentCols + ` FROM deployments
WHERE app_id = $1
ORDER BY created_at DESC, id DESC
LIMIT $2 OFFSET $3`

// sqlCreateDeployment is W3 (CreateDeployment).
const sqlCreateDeployment = `INSERT INTO deployments (app_id, build_id, environment)
SELECT b.app_id, b.id, $1::text
FROM builds b
WHERE b.id = $2 AND b.app_id = $3 AND b.status = 'succeeded'
RETURNING ` + deploymentCols

// sqlUpdateDeploymentStatus is W4 (UpdateDeploymentStatus).
const sqlUpdateDeploymentStatus = `UPDATE deployments
SET status      = $1::text,
    updated_at  = now(),
    started_at  = CASE WHEN $1::text = 'in_progress' THEN COALESCE(started_at, now()) ELSE started_at END,
    finished_at = CASE WHEN $1::text IN ('deployed', 'failed', 'canceled') THEN GREATEST(now(), started_at) ELSE finished_at END
WHERE deployments.id = $2
  AND (status, $1::text) IN (
        VALUES ('pending', 'in_progress'),
               ('pending', 'canceled'),
               ('in_progress', 'deployed'),
               ('in_progress', 'failed'),
               ('in_progress', 'canceled'))
  AND NOT EXISTS (SELECT 1 FROM deployment_operations o WHERE o.deployment_id = deployments.id)
RETURNING ` + deploymentCols

// buildInsertCols are the columns W5 writes.
var buildInsertCols = []string{"app_id", "source_version", "status", "created_at", "updated_at", "started_at", "finished_at"}
