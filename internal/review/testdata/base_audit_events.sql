-- A table that only the review fixtures have: no query uses it, so its
-- columns can be dropped once the drop is allowed.
CREATE TABLE "audit_events" (
  "id" bigint NOT NULL GENERATED ALWAYS AS IDENTITY,
  "app_id" bigint NOT NULL,
  "note" character varying(100) NULL,
  "legacy" text NULL,
  "created_at" timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY ("id")
);
