-- Modify "deployment_operations" table
ALTER TABLE "deployment_operations" ADD CONSTRAINT "deployment_operations_lease_only_active" CHECK ((lease_expires_at IS NULL) OR (state = ANY (ARRAY['running'::text, 'waiting_for_cutover'::text, 'cutting_over'::text]))), ADD CONSTRAINT "deployment_operations_lease_token_nonnegative" CHECK (lease_token >= 0), ADD COLUMN "lease_token" bigint NOT NULL DEFAULT 0, ADD COLUMN "lease_expires_at" timestamptz NULL;
-- Create index "deployment_operations_lease_expires_at_idx" to table: "deployment_operations"
CREATE INDEX "deployment_operations_lease_expires_at_idx" ON "deployment_operations" ("lease_expires_at") WHERE (lease_expires_at IS NOT NULL);
-- Set comment to column: "lease_token" on table: "deployment_operations"
COMMENT ON COLUMN "deployment_operations" ."lease_token" IS 'Fencing token: raised by every claim and rescue; a worker''s moves carry the token of its claim.';
-- Set comment to column: "lease_expires_at" on table: "deployment_operations"
COMMENT ON COLUMN "deployment_operations" ."lease_expires_at" IS 'When the claiming worker''s lease ends unless a heartbeat extends it; NULL unless the operation is active.';
-- Modify "deployments" table
ALTER TABLE "deployments" ADD CONSTRAINT "deployments_operation_counts_nonnegative" CHECK (LEAST(ops_pending, ops_running, ops_waiting_for_cutover, ops_cutting_over, ops_completed, ops_failed, ops_stopped, ops_reverted) >= 0), ADD COLUMN "ops_pending" integer NOT NULL DEFAULT 0, ADD COLUMN "ops_running" integer NOT NULL DEFAULT 0, ADD COLUMN "ops_waiting_for_cutover" integer NOT NULL DEFAULT 0, ADD COLUMN "ops_cutting_over" integer NOT NULL DEFAULT 0, ADD COLUMN "ops_completed" integer NOT NULL DEFAULT 0, ADD COLUMN "ops_failed" integer NOT NULL DEFAULT 0, ADD COLUMN "ops_stopped" integer NOT NULL DEFAULT 0, ADD COLUMN "ops_reverted" integer NOT NULL DEFAULT 0, ADD COLUMN "canceled_at" timestamptz NULL;
-- Set comment to column: "ops_pending" on table: "deployments"
COMMENT ON COLUMN "deployments" ."ops_pending" IS 'How many of the deployment''s operations are pending; kept by the deployment_operations triggers.';
-- Set comment to column: "ops_running" on table: "deployments"
COMMENT ON COLUMN "deployments" ."ops_running" IS 'How many of the deployment''s operations are running; kept by the deployment_operations triggers.';
-- Set comment to column: "ops_waiting_for_cutover" on table: "deployments"
COMMENT ON COLUMN "deployments" ."ops_waiting_for_cutover" IS 'How many of the deployment''s operations are waiting_for_cutover; kept by the deployment_operations triggers.';
-- Set comment to column: "ops_cutting_over" on table: "deployments"
COMMENT ON COLUMN "deployments" ."ops_cutting_over" IS 'How many of the deployment''s operations are cutting_over; kept by the deployment_operations triggers.';
-- Set comment to column: "ops_completed" on table: "deployments"
COMMENT ON COLUMN "deployments" ."ops_completed" IS 'How many of the deployment''s operations are completed; kept by the deployment_operations triggers.';
-- Set comment to column: "ops_failed" on table: "deployments"
COMMENT ON COLUMN "deployments" ."ops_failed" IS 'How many of the deployment''s operations are failed; kept by the deployment_operations triggers.';
-- Set comment to column: "ops_stopped" on table: "deployments"
COMMENT ON COLUMN "deployments" ."ops_stopped" IS 'How many of the deployment''s operations are stopped; kept by the deployment_operations triggers.';
-- Set comment to column: "ops_reverted" on table: "deployments"
COMMENT ON COLUMN "deployments" ."ops_reverted" IS 'How many of the deployment''s operations are reverted; kept by the deployment_operations triggers.';
-- Set comment to column: "canceled_at" on table: "deployments"
COMMENT ON COLUMN "deployments" ."canceled_at" IS 'When CancelDeployment made the rollout final: no resume or retry after it.';

-- deploydb:triggers sha256=f2687dd18061468f898720b30559be710a4bea3e7137dd10258737995a28bb27
-- Functions and triggers of the deploydb schema: the part schema.hcl cannot
-- express. This file is the only place they are edited; it is idempotent,
-- and `make migration` carries the whole file into a new migration whenever
-- it changes (`make check` fails while it is not carried).
--
-- What the triggers keep, whoever writes (the service or a raw query of the
-- app role):
--   * deployments.ops_<state> hold how many of the deployment's operations
--     are in each state, changed by the same statement that moves, inserts or
--     deletes operations;
--   * the status of a deployment that has operations is derived from those
--     counts (deploydb_derive_deployment below is the rule, in one place),
--     with its started_at, finished_at and updated_at (which moves when the
--     status does, not on every operation's progress: so a count update
--     touches no index and stays a HOT update);
--   * NOTIFY deploydb_operations tells waiting workers that work may be
--     claimable: the target's name when operations on it became pending, '*'
--     when anything anywhere may have become claimable.
--
-- Lock order: a statement that changes operations has locked those operation
-- rows before the trigger locks their deployments, one at a time in
-- ascending id order. Every statement of the service follows the same order
-- (app row, then operations in (deployment_id, target) order, then
-- deployments by ascending id), so they cannot deadlock with each other.
--
-- The counting function runs as the owner (SECURITY DEFINER), so a role that
-- may write operations need not be able to write the counts; its
-- search_path is the one the migration ran with.

-- deploydb_count_operations runs once per statement that inserts, updates or
-- deletes operations and adds what the statement changed to the per-state
-- counts of the deployments concerned: +1 for every new row, -1 for every
-- old row, summed per deployment and state. No join of old and new rows (a
-- plan cached from a small statement would make it quadratic on a big
-- one); a row whose state did not change adds +1 and -1, so a heartbeat
-- leaves the counts alone and touches no deployment.
CREATE OR REPLACE FUNCTION deploydb_count_operations() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    r          record;
    dep_ids    bigint[];
    dep_states text[];
    dep_deltas integer[];
    targets    text[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(n.deployment_id), array_agg(n.state), array_agg(1)
        INTO dep_ids, dep_states, dep_deltas
        FROM new_ops n;
        SELECT array_agg(DISTINCT n.target) INTO targets FROM new_ops n WHERE n.state = 'pending';
    ELSIF TG_OP = 'DELETE' THEN
        SELECT array_agg(o.deployment_id), array_agg(o.state), array_agg(-1)
        INTO dep_ids, dep_states, dep_deltas
        FROM old_ops o;
    ELSE
        SELECT array_agg(c.deployment_id), array_agg(c.state), array_agg(c.d)
        INTO dep_ids, dep_states, dep_deltas
        FROM (SELECT n.deployment_id, n.state, 1 AS d FROM new_ops n
              UNION ALL
              SELECT o.deployment_id, o.state, -1 FROM old_ops o) c;
        IF EXISTS (SELECT 1 FROM new_ops n WHERE n.state = 'pending') THEN
            SELECT array_agg(DISTINCT w.target) INTO targets
            FROM (SELECT n.id, n.target FROM new_ops n WHERE n.state = 'pending'
                  EXCEPT
                  SELECT o.id, o.target FROM old_ops o WHERE o.state = 'pending') w;
        END IF;
    END IF;
    FOR r IN
        SELECT c.deployment_id,
               coalesce(sum(c.d) FILTER (WHERE c.state = 'pending'), 0)::integer             AS pending,
               coalesce(sum(c.d) FILTER (WHERE c.state = 'running'), 0)::integer             AS running,
               coalesce(sum(c.d) FILTER (WHERE c.state = 'waiting_for_cutover'), 0)::integer AS waiting_for_cutover,
               coalesce(sum(c.d) FILTER (WHERE c.state = 'cutting_over'), 0)::integer        AS cutting_over,
               coalesce(sum(c.d) FILTER (WHERE c.state = 'completed'), 0)::integer           AS completed,
               coalesce(sum(c.d) FILTER (WHERE c.state = 'failed'), 0)::integer              AS failed,
               coalesce(sum(c.d) FILTER (WHERE c.state = 'stopped'), 0)::integer             AS stopped,
               coalesce(sum(c.d) FILTER (WHERE c.state = 'reverted'), 0)::integer            AS reverted
        FROM unnest(dep_ids, dep_states, dep_deltas) AS c(deployment_id, state, d)
        GROUP BY c.deployment_id
        HAVING sum(c.d) FILTER (WHERE c.state = 'pending') <> 0
            OR sum(c.d) FILTER (WHERE c.state = 'running') <> 0
            OR sum(c.d) FILTER (WHERE c.state = 'waiting_for_cutover') <> 0
            OR sum(c.d) FILTER (WHERE c.state = 'cutting_over') <> 0
            OR sum(c.d) FILTER (WHERE c.state = 'completed') <> 0
            OR sum(c.d) FILTER (WHERE c.state = 'failed') <> 0
            OR sum(c.d) FILTER (WHERE c.state = 'stopped') <> 0
            OR sum(c.d) FILTER (WHERE c.state = 'reverted') <> 0
        ORDER BY c.deployment_id
    LOOP
        UPDATE deployments
        SET ops_pending             = ops_pending + r.pending,
            ops_running             = ops_running + r.running,
            ops_waiting_for_cutover = ops_waiting_for_cutover + r.waiting_for_cutover,
            ops_cutting_over        = ops_cutting_over + r.cutting_over,
            ops_completed           = ops_completed + r.completed,
            ops_failed              = ops_failed + r.failed,
            ops_stopped             = ops_stopped + r.stopped,
            ops_reverted            = ops_reverted + r.reverted
        WHERE id = r.deployment_id;
    END LOOP;
    IF cardinality(targets) > 64 THEN
        PERFORM pg_notify('deploydb_operations', '*');
    ELSIF cardinality(targets) > 0 THEN
        PERFORM pg_notify('deploydb_operations', t) FROM unnest(targets) AS t;
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER deployment_operations_count_insert
    AFTER INSERT ON deployment_operations
    REFERENCING NEW TABLE AS new_ops
    FOR EACH STATEMENT EXECUTE FUNCTION deploydb_count_operations();

CREATE OR REPLACE TRIGGER deployment_operations_count_update
    AFTER UPDATE ON deployment_operations
    REFERENCING OLD TABLE AS old_ops NEW TABLE AS new_ops
    FOR EACH STATEMENT EXECUTE FUNCTION deploydb_count_operations();

CREATE OR REPLACE TRIGGER deployment_operations_count_delete
    AFTER DELETE ON deployment_operations
    REFERENCING OLD TABLE AS old_ops
    FOR EACH STATEMENT EXECUTE FUNCTION deploydb_count_operations();

-- deploydb_derive_deployment runs before every insert or update of a
-- deployment. It refuses counts that did not come from the operation
-- triggers and, for a deployment with operations, sets the status from the
-- counts. The first rule that applies wins:
--
--   any running, waiting_for_cutover or cutting_over -> in_progress
--   any failed                                       -> failed
--   all completed                                    -> deployed
--   all pending                                      -> pending, or in_progress
--                                                       once it has started
--                                                       (Retry, a rescue)
--   any stopped or reverted                          -> canceled
--   otherwise (pending and completed only)           -> in_progress
--
-- started_at is set when the first operation has started; finished_at when
-- the status is terminal (never before started_at), cleared otherwise.
CREATE OR REPLACE FUNCTION deploydb_derive_deployment() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    total  integer;
    active integer;
    st     text;
BEGIN
    IF pg_trigger_depth() < 2
       AND (NEW.ops_pending, NEW.ops_running, NEW.ops_waiting_for_cutover, NEW.ops_cutting_over,
            NEW.ops_completed, NEW.ops_failed, NEW.ops_stopped, NEW.ops_reverted)
           IS DISTINCT FROM
           (CASE WHEN TG_OP = 'UPDATE' THEN (OLD.ops_pending, OLD.ops_running, OLD.ops_waiting_for_cutover, OLD.ops_cutting_over,
                                             OLD.ops_completed, OLD.ops_failed, OLD.ops_stopped, OLD.ops_reverted)
                 ELSE (0, 0, 0, 0, 0, 0, 0, 0) END)
       AND NOT pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = TG_RELID), 'MEMBER')
    THEN
        RAISE EXCEPTION 'the operation counts of deployment % are kept by the deployment_operations triggers', NEW.id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'deployments_operation_counts_derived';
    END IF;
    total := NEW.ops_pending + NEW.ops_running + NEW.ops_waiting_for_cutover + NEW.ops_cutting_over
           + NEW.ops_completed + NEW.ops_failed + NEW.ops_stopped + NEW.ops_reverted;
    IF total = 0 THEN
        RETURN NEW; -- no operations: the manual lifecycle of UpdateDeploymentStatus
    END IF;
    active := NEW.ops_running + NEW.ops_waiting_for_cutover + NEW.ops_cutting_over;
    st := CASE
            WHEN active > 0 THEN 'in_progress'
            WHEN NEW.ops_failed > 0 THEN 'failed'
            WHEN NEW.ops_completed = total THEN 'deployed'
            WHEN NEW.ops_pending = total THEN CASE WHEN NEW.started_at IS NULL THEN 'pending' ELSE 'in_progress' END
            WHEN NEW.ops_stopped + NEW.ops_reverted > 0 THEN 'canceled'
            ELSE 'in_progress'
          END;
    IF TG_OP = 'UPDATE' AND pg_trigger_depth() < 2 AND NEW.status IS DISTINCT FROM OLD.status AND NEW.status <> st THEN
        RAISE EXCEPTION 'the status of deployment % is derived from its operations (it is %)', NEW.id, st
            USING ERRCODE = 'check_violation', CONSTRAINT = 'deployments_status_derived';
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.status IS DISTINCT FROM st THEN
        NEW.updated_at := now(); -- progress alone shows in the counts
    END IF;
    NEW.status := st;
    IF NEW.started_at IS NULL
       AND active + NEW.ops_completed + NEW.ops_failed + NEW.ops_reverted > 0 THEN
        NEW.started_at := now();
    END IF;
    IF st IN ('deployed', 'failed', 'canceled') THEN
        IF TG_OP = 'INSERT' OR OLD.status IS DISTINCT FROM st OR OLD.finished_at IS NULL THEN
            NEW.finished_at := GREATEST(now(), NEW.started_at);
        END IF;
    ELSE
        NEW.finished_at := NULL;
    END IF;
    IF TG_OP = 'UPDATE'
       AND ((OLD.status = 'in_progress' AND st <> 'in_progress')
            OR (OLD.ops_failed + OLD.ops_stopped > 0 AND NEW.ops_failed + NEW.ops_stopped = 0)) THEN
        PERFORM pg_notify('deploydb_operations', '*');
    END IF;
    RETURN NEW;
END
$$;

CREATE OR REPLACE TRIGGER deployments_derive
    BEFORE INSERT OR UPDATE ON deployments
    FOR EACH ROW EXECUTE FUNCTION deploydb_derive_deployment();

-- deploydb_recount_operations recounts every deployment whose counts differ
-- from its operations and returns how many it fixed: a no-op when the
-- triggers have always run. Only the table owner may call it (the counts
-- guard above); a bulk load that ran with triggers off
-- (session_replication_role = replica) calls it afterwards.
CREATE OR REPLACE FUNCTION deploydb_recount_operations() RETURNS integer
LANGUAGE sql AS $$
WITH fixed AS (
    UPDATE deployments d
    SET ops_pending             = coalesce(c.pending, 0),
        ops_running             = coalesce(c.running, 0),
        ops_waiting_for_cutover = coalesce(c.waiting_for_cutover, 0),
        ops_cutting_over        = coalesce(c.cutting_over, 0),
        ops_completed           = coalesce(c.completed, 0),
        ops_failed              = coalesce(c.failed, 0),
        ops_stopped             = coalesce(c.stopped, 0),
        ops_reverted            = coalesce(c.reverted, 0)
    FROM deployments d0
    LEFT JOIN (
        SELECT deployment_id,
               count(*) FILTER (WHERE state = 'pending')::integer             AS pending,
               count(*) FILTER (WHERE state = 'running')::integer             AS running,
               count(*) FILTER (WHERE state = 'waiting_for_cutover')::integer AS waiting_for_cutover,
               count(*) FILTER (WHERE state = 'cutting_over')::integer        AS cutting_over,
               count(*) FILTER (WHERE state = 'completed')::integer           AS completed,
               count(*) FILTER (WHERE state = 'failed')::integer              AS failed,
               count(*) FILTER (WHERE state = 'stopped')::integer             AS stopped,
               count(*) FILTER (WHERE state = 'reverted')::integer            AS reverted
        FROM deployment_operations
        GROUP BY deployment_id
    ) c ON c.deployment_id = d0.id
    WHERE d.id = d0.id
      AND (d0.ops_pending, d0.ops_running, d0.ops_waiting_for_cutover, d0.ops_cutting_over,
           d0.ops_completed, d0.ops_failed, d0.ops_stopped, d0.ops_reverted)
          IS DISTINCT FROM
          (coalesce(c.pending, 0), coalesce(c.running, 0), coalesce(c.waiting_for_cutover, 0), coalesce(c.cutting_over, 0),
           coalesce(c.completed, 0), coalesce(c.failed, 0), coalesce(c.stopped, 0), coalesce(c.reverted, 0))
    RETURNING d.id
)
SELECT count(*)::integer FROM fixed
$$;

-- Repair on every carry of this file: recount, and give active operations
-- claimed before leases existed a lease, so the rescuer can return them if
-- their worker is gone.
SELECT deploydb_recount_operations();

UPDATE deployment_operations
SET lease_expires_at = now() + interval '1 minute'
WHERE state IN ('running', 'waiting_for_cutover', 'cutting_over') AND lease_expires_at IS NULL;
