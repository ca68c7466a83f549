-- name: CreateApp :one
-- CreateApp inserts an app. A duplicate name violates apps_name_key (23505);
-- a malformed name violates apps_name_format (23514).
INSERT INTO apps (name)
VALUES (@name)
RETURNING *;

-- name: GetApp :one
-- GetApp returns the app with the given id (primary key).
SELECT * FROM apps
WHERE id = @id;

-- name: GetAppByName :one
-- GetAppByName returns the app with the given name (apps_name_key).
SELECT * FROM apps
WHERE name = @name;

-- name: ListAppsPaged :many
-- ListAppsPaged returns one keyset page of apps, newest first, strictly
-- after the (created_at, id) cursor. Served by apps_created_at_id_idx.
SELECT * FROM apps
WHERE (created_at, id) < (@cursor_created_at::timestamptz, @cursor_id::bigint)
ORDER BY created_at DESC, id DESC
LIMIT @page_size;

-- name: DeleteApp :execrows
-- DeleteApp deletes an app with its builds and deployments (ON DELETE
-- CASCADE) and returns the number of apps deleted (0 or 1). It locks the app
-- row, then the operations of its deployments ((deployment_id, target)
-- order), before the
-- cascade reaches the deployments: the lock order of every statement, so it
-- cannot deadlock with rollouts of the app.
WITH app AS (
    SELECT a.id FROM apps a WHERE a.id = @id FOR UPDATE
), locked AS (
    SELECT o.id FROM deployment_operations o
    JOIN deployments d ON d.id = o.deployment_id
    WHERE d.app_id = @id
    ORDER BY o.deployment_id, o.target
    FOR UPDATE OF o
)
DELETE FROM apps
WHERE apps.id = (SELECT app.id FROM app) AND (SELECT count(*) FROM locked) >= 0;
