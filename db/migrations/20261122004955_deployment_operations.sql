-- Create "deployment_operations" table
CREATE TABLE "deployment_operations" (
  "id" bigint NOT NULL GENERATED ALWAYS AS IDENTITY,
  "deployment_id" bigint NOT NULL,
  "target" text NOT NULL,
  "state" text NOT NULL DEFAULT 'pending',
  "attempt" integer NOT NULL DEFAULT 1,
  "last_error" text NULL,
  "claimed_by" text NULL,
  "claimed_at" timestamptz NULL,
  "started_at" timestamptz NULL,
  "finished_at" timestamptz NULL,
  "created_at" timestamptz NOT NULL DEFAULT now(),
  "updated_at" timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY ("id"),
  CONSTRAINT "deployment_operations_deployment_id_fkey" FOREIGN KEY ("deployment_id") REFERENCES "deployments" ("id") ON UPDATE NO ACTION ON DELETE CASCADE,
  CONSTRAINT "deployment_operations_attempt_positive" CHECK (attempt >= 1),
  CONSTRAINT "deployment_operations_claim_pair" CHECK ((claimed_by IS NULL) = (claimed_at IS NULL)),
  CONSTRAINT "deployment_operations_finished_after_started" CHECK ((finished_at IS NULL) OR (started_at IS NULL) OR (finished_at >= started_at)),
  CONSTRAINT "deployment_operations_finished_at_iff_terminal" CHECK ((state = ANY (ARRAY['completed'::text, 'failed'::text, 'stopped'::text, 'reverted'::text])) = (finished_at IS NOT NULL)),
  CONSTRAINT "deployment_operations_last_error_length" CHECK (char_length(last_error) <= 4096),
  CONSTRAINT "deployment_operations_started_at_set" CHECK ((state <> ALL (ARRAY['running'::text, 'waiting_for_cutover'::text, 'cutting_over'::text, 'completed'::text, 'failed'::text, 'reverted'::text])) OR (started_at IS NOT NULL)),
  CONSTRAINT "deployment_operations_state_valid" CHECK (state = ANY (ARRAY['pending'::text, 'running'::text, 'waiting_for_cutover'::text, 'cutting_over'::text, 'completed'::text, 'failed'::text, 'stopped'::text, 'reverted'::text])),
  CONSTRAINT "deployment_operations_target_format" CHECK (target ~ '^[a-z0-9]([-.a-z0-9]{0,61}[a-z0-9])?$'::text)
);
-- Create index "deployment_operations_deployment_id_target_key" to table: "deployment_operations"
CREATE UNIQUE INDEX "deployment_operations_deployment_id_target_key" ON "deployment_operations" ("deployment_id", "target");
-- Create index "deployment_operations_target_state_created_at_id_idx" to table: "deployment_operations"
CREATE INDEX "deployment_operations_target_state_created_at_id_idx" ON "deployment_operations" ("target", "state", "created_at", "id");
-- Set comment to table: "deployment_operations"
COMMENT ON TABLE "deployment_operations" IS 'The rollout of one deployment to one target (cluster, region).';
-- Set comment to column: "target" on table: "deployment_operations"
COMMENT ON COLUMN "deployment_operations" ."target" IS 'Lowercase name: a-z, 0-9, ''-'' and ''.'', 1-63 characters.';
-- Set comment to column: "attempt" on table: "deployment_operations"
COMMENT ON COLUMN "deployment_operations" ."attempt" IS '1 for the first run; each retry after a failure adds one.';
-- Set comment to column: "last_error" on table: "deployment_operations"
COMMENT ON COLUMN "deployment_operations" ."last_error" IS 'Why the latest failed attempt failed; kept across retries.';
-- Set comment to column: "claimed_by" on table: "deployment_operations"
COMMENT ON COLUMN "deployment_operations" ."claimed_by" IS 'The worker that claimed the operation with ClaimNextOperation.';
