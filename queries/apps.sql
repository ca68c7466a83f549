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

-- name: LockAppForDelete :one
-- LockAppForDelete locks an app row against every writer (DeleteApp's
-- first statement): no deployment of the app can be created until the
-- transaction ends.
SELECT id FROM apps WHERE id = @id FOR UPDATE;

-- name: LockAppOperations :execrows
-- LockAppOperations locks the operations of an app's deployments in
-- (deployment_id, target) order, the lock order of every statement (DeleteApp's
-- second statement: it runs after the app row is locked, so its snapshot
-- holds every operation the app will ever have).
SELECT o.id FROM deployment_operations o
JOIN deployments d ON d.id = o.deployment_id
WHERE d.app_id = @app_id
ORDER BY o.deployment_id, o.target
FOR UPDATE OF o;

-- name: DeleteApp :execrows
-- DeleteApp deletes an app with its builds and deployments (ON DELETE
-- CASCADE) and returns the number of apps deleted (0 or 1). The service runs
-- it after LockAppForDelete and LockAppOperations, in one transaction, so
-- the cascade finds every operation locked already.
DELETE FROM apps
WHERE id = @id;
