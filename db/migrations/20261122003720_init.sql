-- Create "apps" table
CREATE TABLE "apps" (
  "id" bigint NOT NULL GENERATED ALWAYS AS IDENTITY,
  "name" text NOT NULL,
  "created_at" timestamptz NOT NULL DEFAULT now(),
  "updated_at" timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY ("id"),
  CONSTRAINT "apps_name_format" CHECK (name ~ '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$'::text)
);
-- Create index "apps_created_at_id_idx" to table: "apps"
CREATE INDEX "apps_created_at_id_idx" ON "apps" ("created_at" DESC, "id" DESC);
-- Create index "apps_name_key" to table: "apps"
CREATE UNIQUE INDEX "apps_name_key" ON "apps" ("name");
-- Set comment to table: "apps"
COMMENT ON TABLE "apps" IS 'An application that is built and deployed.';
-- Set comment to column: "name" on table: "apps"
COMMENT ON COLUMN "apps" ."name" IS 'Lowercase DNS label (RFC 1123), 1-63 characters.';
-- Create "builds" table
CREATE TABLE "builds" (
  "id" bigint NOT NULL GENERATED ALWAYS AS IDENTITY,
  "app_id" bigint NOT NULL,
  "source_version" text NULL,
  "status" text NOT NULL DEFAULT 'pending',
  "created_at" timestamptz NOT NULL DEFAULT now(),
  "updated_at" timestamptz NOT NULL DEFAULT now(),
  "started_at" timestamptz NULL,
  "finished_at" timestamptz NULL,
  PRIMARY KEY ("id"),
  CONSTRAINT "builds_app_id_fkey" FOREIGN KEY ("app_id") REFERENCES "apps" ("id") ON UPDATE NO ACTION ON DELETE CASCADE,
  CONSTRAINT "builds_finished_after_started" CHECK ((finished_at IS NULL) OR (started_at IS NULL) OR (finished_at >= started_at)),
  CONSTRAINT "builds_finished_at_iff_terminal" CHECK ((status = ANY (ARRAY['succeeded'::text, 'failed'::text, 'canceled'::text])) = (finished_at IS NOT NULL)),
  CONSTRAINT "builds_source_version_length" CHECK ((char_length(source_version) >= 1) AND (char_length(source_version) <= 255)),
  CONSTRAINT "builds_started_at_set" CHECK ((status <> ALL (ARRAY['in_progress'::text, 'succeeded'::text, 'failed'::text])) OR (started_at IS NOT NULL)),
  CONSTRAINT "builds_status_valid" CHECK (status = ANY (ARRAY['pending'::text, 'in_progress'::text, 'succeeded'::text, 'failed'::text, 'canceled'::text]))
);
-- Create index "builds_app_id_created_at_id_idx" to table: "builds"
CREATE INDEX "builds_app_id_created_at_id_idx" ON "builds" ("app_id", "created_at" DESC, "id" DESC);
-- Create index "builds_app_id_status_created_at_id_idx" to table: "builds"
CREATE INDEX "builds_app_id_status_created_at_id_idx" ON "builds" ("app_id", "status", "created_at" DESC, "id" DESC);
-- Create index "builds_id_app_id_key" to table: "builds"
CREATE UNIQUE INDEX "builds_id_app_id_key" ON "builds" ("id", "app_id");
-- Set comment to table: "builds"
COMMENT ON TABLE "builds" IS 'A build of an app''s source at one version.';
-- Set comment to column: "source_version" on table: "builds"
COMMENT ON COLUMN "builds" ."source_version" IS 'Commit SHA or tag the build was made from.';
-- Create "deployments" table
CREATE TABLE "deployments" (
  "id" bigint NOT NULL GENERATED ALWAYS AS IDENTITY,
  "app_id" bigint NOT NULL,
  "build_id" bigint NOT NULL,
  "environment" text NOT NULL DEFAULT 'production',
  "status" text NOT NULL DEFAULT 'pending',
  "created_at" timestamptz NOT NULL DEFAULT now(),
  "updated_at" timestamptz NOT NULL DEFAULT now(),
  "started_at" timestamptz NULL,
  "finished_at" timestamptz NULL,
  PRIMARY KEY ("id"),
  CONSTRAINT "deployments_app_id_fkey" FOREIGN KEY ("app_id") REFERENCES "apps" ("id") ON UPDATE NO ACTION ON DELETE CASCADE,
  CONSTRAINT "deployments_build_id_app_id_fkey" FOREIGN KEY ("build_id", "app_id") REFERENCES "builds" ("id", "app_id") ON UPDATE NO ACTION ON DELETE NO ACTION,
  CONSTRAINT "deployments_environment_format" CHECK (environment ~ '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$'::text),
  CONSTRAINT "deployments_finished_after_started" CHECK ((finished_at IS NULL) OR (started_at IS NULL) OR (finished_at >= started_at)),
  CONSTRAINT "deployments_finished_at_iff_terminal" CHECK ((status = ANY (ARRAY['deployed'::text, 'failed'::text, 'canceled'::text])) = (finished_at IS NOT NULL)),
  CONSTRAINT "deployments_started_at_set" CHECK ((status <> ALL (ARRAY['in_progress'::text, 'deployed'::text, 'failed'::text])) OR (started_at IS NOT NULL)),
  CONSTRAINT "deployments_status_valid" CHECK (status = ANY (ARRAY['pending'::text, 'in_progress'::text, 'deployed'::text, 'failed'::text, 'canceled'::text]))
);
-- Create index "deployments_app_id_created_at_id_idx" to table: "deployments"
CREATE INDEX "deployments_app_id_created_at_id_idx" ON "deployments" ("app_id", "created_at" DESC, "id" DESC);
-- Create index "deployments_app_id_environment_created_at_id_idx" to table: "deployments"
CREATE INDEX "deployments_app_id_environment_created_at_id_idx" ON "deployments" ("app_id", "environment", "created_at" DESC, "id" DESC);
-- Create index "deployments_app_id_status_created_at_id_idx" to table: "deployments"
CREATE INDEX "deployments_app_id_status_created_at_id_idx" ON "deployments" ("app_id", "status", "created_at" DESC, "id" DESC);
-- Create index "deployments_app_id_status_finished_at_id_idx" to table: "deployments"
CREATE INDEX "deployments_app_id_status_finished_at_id_idx" ON "deployments" ("app_id", "status", "finished_at" DESC, "id" DESC);
-- Create index "deployments_app_id_updated_at_id_idx" to table: "deployments"
CREATE INDEX "deployments_app_id_updated_at_id_idx" ON "deployments" ("app_id", "updated_at" DESC, "id" DESC);
-- Create index "deployments_build_id_idx" to table: "deployments"
CREATE INDEX "deployments_build_id_idx" ON "deployments" ("build_id");
-- Create index "deployments_one_in_progress_key" to table: "deployments"
CREATE UNIQUE INDEX "deployments_one_in_progress_key" ON "deployments" ("app_id", "environment") WHERE (status = 'in_progress'::text);
-- Set comment to table: "deployments"
COMMENT ON TABLE "deployments" IS 'A rollout of one build of an app to one environment.';
-- Set comment to column: "environment" on table: "deployments"
COMMENT ON COLUMN "deployments" ."environment" IS 'Lowercase DNS label (RFC 1123), 1-63 characters.';
