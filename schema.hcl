// deploydb desired schema. This file is the only place the schema is edited:
// change it, then run `make migration NAME=...` to have Atlas write the
// versioned migration into db/migrations.
//
// Conventions:
//   - ids are bigint GENERATED ALWAYS AS IDENTITY;
//   - timestamps are timestamptz; updated_at is set by the queries in queries/;
//   - statuses are text + CHECK (not enums) so that they can be used inside
//     CHECK constraints and partial-index predicates;
//   - every list query is served by an index whose trailing columns are
//     (<sort column> DESC, id DESC), so keyset pages are index range scans.

schema "public" {
  comment = "standard public schema"
}

table "apps" {
  schema  = schema.public
  comment = "An application that is built and deployed."
  column "id" {
    null = false
    type = bigint
    identity {
      generated = ALWAYS
    }
  }
  column "name" {
    null    = false
    type    = text
    comment = "Lowercase DNS label (RFC 1123), 1-63 characters."
  }
  column "created_at" {
    null    = false
    type    = timestamptz
    default = sql("now()")
  }
  column "updated_at" {
    null    = false
    type    = timestamptz
    default = sql("now()")
  }
  primary_key {
    columns = [column.id]
  }
  index "apps_name_key" {
    unique  = true
    columns = [column.name]
  }
  // Keyset pages of ListAppsPaged (newest first).
  index "apps_created_at_id_idx" {
    on {
      column = column.created_at
      desc   = true
    }
    on {
      column = column.id
      desc   = true
    }
  }
  check "apps_name_format" {
    expr = "name ~ '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$'"
  }
}

table "builds" {
  schema  = schema.public
  comment = "A build of an app's source at one version."
  column "id" {
    null = false
    type = bigint
    identity {
      generated = ALWAYS
    }
  }
  column "app_id" {
    null = false
    type = bigint
  }
  column "source_version" {
    null    = true
    type    = text
    comment = "Commit SHA or tag the build was made from."
  }
  column "idempotency_key" {
    null    = true
    type    = text
    comment = "Caller-chosen key of the CreateBuild call that made the build; unique per app."
  }
  column "status" {
    null    = false
    type    = text
    default = "pending"
  }
  column "created_at" {
    null    = false
    type    = timestamptz
    default = sql("now()")
  }
  column "updated_at" {
    null    = false
    type    = timestamptz
    default = sql("now()")
  }
  column "started_at" {
    null = true
    type = timestamptz
  }
  column "finished_at" {
    null = true
    type = timestamptz
  }
  primary_key {
    columns = [column.id]
  }
  foreign_key "builds_app_id_fkey" {
    columns     = [column.app_id]
    ref_columns = [table.apps.column.id]
    on_update   = NO_ACTION
    on_delete   = CASCADE
  }
  // Target of the composite foreign key from deployments: a deployment can
  // only reference a build of its own app.
  index "builds_id_app_id_key" {
    unique  = true
    columns = [column.id, column.app_id]
  }
  // ListAppBuilds / ListAppBuildsPaged: newest first per app.
  index "builds_app_id_created_at_id_idx" {
    on {
      column = column.app_id
    }
    on {
      column = column.created_at
      desc   = true
    }
    on {
      column = column.id
      desc   = true
    }
  }
  // CreateBuild with an idempotency key: one build per app and key.
  index "builds_app_id_idempotency_key_key" {
    unique  = true
    columns = [column.app_id, column.idempotency_key]
    where   = "idempotency_key IS NOT NULL"
  }
  // GetLatestSuccessfulBuild: newest build of an app in one status.
  index "builds_app_id_status_created_at_id_idx" {
    on {
      column = column.app_id
    }
    on {
      column = column.status
    }
    on {
      column = column.created_at
      desc   = true
    }
    on {
      column = column.id
      desc   = true
    }
  }
  check "builds_status_valid" {
    expr = "status IN ('pending', 'in_progress', 'succeeded', 'failed', 'canceled')"
  }
  check "builds_source_version_length" {
    expr = "char_length(source_version) BETWEEN 1 AND 255"
  }
  check "builds_idempotency_key_length" {
    expr = "char_length(idempotency_key) BETWEEN 1 AND 255"
  }
  check "builds_started_at_set" {
    expr = "status NOT IN ('in_progress', 'succeeded', 'failed') OR started_at IS NOT NULL"
  }
  check "builds_finished_at_iff_terminal" {
    expr = "(status IN ('succeeded', 'failed', 'canceled')) = (finished_at IS NOT NULL)"
  }
  check "builds_finished_after_started" {
    expr = "finished_at IS NULL OR started_at IS NULL OR finished_at >= started_at"
  }
}

table "deployments" {
  schema  = schema.public
  comment = "A rollout of one build of an app to one environment."
  column "id" {
    null = false
    type = bigint
    identity {
      generated = ALWAYS
    }
  }
  column "app_id" {
    null = false
    type = bigint
  }
  column "build_id" {
    null = false
    type = bigint
  }
  column "environment" {
    null    = false
    type    = text
    default = "production"
    comment = "Lowercase DNS label (RFC 1123), 1-63 characters."
  }
  column "idempotency_key" {
    null    = true
    type    = text
    comment = "Caller-chosen key of the CreateDeployment call that made the deployment; unique per app."
  }
  column "status" {
    null    = false
    type    = text
    default = "pending"
  }
  column "created_at" {
    null    = false
    type    = timestamptz
    default = sql("now()")
  }
  column "updated_at" {
    null    = false
    type    = timestamptz
    default = sql("now()")
  }
  column "started_at" {
    null = true
    type = timestamptz
  }
  column "finished_at" {
    null = true
    type = timestamptz
  }
  column "ops_pending" {
    null    = false
    type    = integer
    default = 0
    comment = "How many of the deployment's operations are pending; kept by the deployment_operations triggers."
  }
  column "ops_running" {
    null    = false
    type    = integer
    default = 0
    comment = "How many of the deployment's operations are running; kept by the deployment_operations triggers."
  }
  column "ops_waiting_for_cutover" {
    null    = false
    type    = integer
    default = 0
    comment = "How many of the deployment's operations are waiting_for_cutover; kept by the deployment_operations triggers."
  }
  column "ops_cutting_over" {
    null    = false
    type    = integer
    default = 0
    comment = "How many of the deployment's operations are cutting_over; kept by the deployment_operations triggers."
  }
  column "ops_completed" {
    null    = false
    type    = integer
    default = 0
    comment = "How many of the deployment's operations are completed; kept by the deployment_operations triggers."
  }
  column "ops_failed" {
    null    = false
    type    = integer
    default = 0
    comment = "How many of the deployment's operations are failed; kept by the deployment_operations triggers."
  }
  column "ops_stopped" {
    null    = false
    type    = integer
    default = 0
    comment = "How many of the deployment's operations are stopped; kept by the deployment_operations triggers."
  }
  column "ops_reverted" {
    null    = false
    type    = integer
    default = 0
    comment = "How many of the deployment's operations are reverted; kept by the deployment_operations triggers."
  }
  column "canceled_at" {
    null    = true
    type    = timestamptz
    comment = "When CancelDeployment made the rollout final: no resume or retry after it."
  }
  primary_key {
    columns = [column.id]
  }
  foreign_key "deployments_app_id_fkey" {
    columns     = [column.app_id]
    ref_columns = [table.apps.column.id]
    on_update   = NO_ACTION
    on_delete   = CASCADE
  }
  // A deployment deploys a build of its own app, and a deployed build cannot
  // be deleted. NO ACTION (checked at the end of the statement) rather than
  // RESTRICT (checked at once) so that deleting an app can cascade to its
  // builds and deployments in one statement; deleting a referenced build on
  // its own is still refused.
  foreign_key "deployments_build_id_app_id_fkey" {
    columns     = [column.build_id, column.app_id]
    ref_columns = [table.builds.column.id, table.builds.column.app_id]
    on_update   = NO_ACTION
    on_delete   = NO_ACTION
  }
  // Foreign-key support: finding the deployments of a build (DeleteBuild).
  index "deployments_build_id_idx" {
    columns = [column.build_id]
  }
  // CreateDeployment with an idempotency key: one deployment per app and key.
  index "deployments_app_id_idempotency_key_key" {
    unique  = true
    columns = [column.app_id, column.idempotency_key]
    where   = "idempotency_key IS NOT NULL"
  }
  // At most one deployment in progress per app and environment.
  index "deployments_one_in_progress_key" {
    unique  = true
    columns = [column.app_id, column.environment]
    where   = "status = 'in_progress'"
  }
  // ListAppDeployments(Paged), ListDeployments order_by=created_at.
  index "deployments_app_id_created_at_id_idx" {
    on {
      column = column.app_id
    }
    on {
      column = column.created_at
      desc   = true
    }
    on {
      column = column.id
      desc   = true
    }
  }
  // ListDeployments order_by=created_at with an environment filter;
  // GetLatestDeployment.
  index "deployments_app_id_environment_created_at_id_idx" {
    on {
      column = column.app_id
    }
    on {
      column = column.environment
    }
    on {
      column = column.created_at
      desc   = true
    }
    on {
      column = column.id
      desc   = true
    }
  }
  // ListDeployments order_by=created_at with a status filter.
  index "deployments_app_id_status_created_at_id_idx" {
    on {
      column = column.app_id
    }
    on {
      column = column.status
    }
    on {
      column = column.created_at
      desc   = true
    }
    on {
      column = column.id
      desc   = true
    }
  }
  // ListDeployments order_by=updated_at (and updated_after/before).
  index "deployments_app_id_updated_at_id_idx" {
    on {
      column = column.app_id
    }
    on {
      column = column.updated_at
      desc   = true
    }
    on {
      column = column.id
      desc   = true
    }
  }
  // ListDeployments order_by=finished_at with a terminal status (and
  // finished_after/before); ListSuccessfulDeployments.
  index "deployments_app_id_status_finished_at_id_idx" {
    on {
      column = column.app_id
    }
    on {
      column = column.status
    }
    on {
      column = column.finished_at
      desc   = true
    }
    on {
      column = column.id
      desc   = true
    }
  }
  check "deployments_idempotency_key_length" {
    expr = "char_length(idempotency_key) BETWEEN 1 AND 255"
  }
  check "deployments_environment_format" {
    expr = "environment ~ '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$'"
  }
  check "deployments_status_valid" {
    expr = "status IN ('pending', 'in_progress', 'deployed', 'failed', 'canceled')"
  }
  check "deployments_started_at_set" {
    expr = "status NOT IN ('in_progress', 'deployed', 'failed') OR started_at IS NOT NULL"
  }
  check "deployments_finished_at_iff_terminal" {
    expr = "(status IN ('deployed', 'failed', 'canceled')) = (finished_at IS NOT NULL)"
  }
  check "deployments_finished_after_started" {
    expr = "finished_at IS NULL OR started_at IS NULL OR finished_at >= started_at"
  }
  check "deployments_operation_counts_nonnegative" {
    expr = "LEAST(ops_pending, ops_running, ops_waiting_for_cutover, ops_cutting_over, ops_completed, ops_failed, ops_stopped, ops_reverted) >= 0"
  }
}

table "deployment_operations" {
  schema  = schema.public
  comment = "The rollout of one deployment to one target (cluster, region)."
  column "id" {
    null = false
    type = bigint
    identity {
      generated = ALWAYS
    }
  }
  column "deployment_id" {
    null = false
    type = bigint
  }
  column "target" {
    null    = false
    type    = text
    comment = "Lowercase name: a-z, 0-9, '-' and '.', 1-63 characters."
  }
  column "state" {
    null    = false
    type    = text
    default = "pending"
  }
  column "attempt" {
    null    = false
    type    = integer
    default = 1
    comment = "1 for the first run; each retry after a failure adds one."
  }
  column "last_error" {
    null    = true
    type    = text
    comment = "Why the latest failed attempt failed; kept across retries."
  }
  column "claimed_by" {
    null    = true
    type    = text
    comment = "The worker that claimed the operation with ClaimNextOperation."
  }
  column "claimed_at" {
    null = true
    type = timestamptz
  }
  column "lease_token" {
    null    = false
    type    = bigint
    default = 0
    comment = "Fencing token: raised by every claim and rescue; a worker's moves carry the token of its claim."
  }
  column "lease_expires_at" {
    null    = true
    type    = timestamptz
    comment = "When the claiming worker's lease ends unless a heartbeat extends it; NULL unless the operation is active."
  }
  column "started_at" {
    null = true
    type = timestamptz
  }
  column "finished_at" {
    null = true
    type = timestamptz
  }
  column "created_at" {
    null    = false
    type    = timestamptz
    default = sql("now()")
  }
  column "updated_at" {
    null    = false
    type    = timestamptz
    default = sql("now()")
  }
  primary_key {
    columns = [column.id]
  }
  foreign_key "deployment_operations_deployment_id_fkey" {
    columns     = [column.deployment_id]
    ref_columns = [table.deployments.column.id]
    on_update   = NO_ACTION
    on_delete   = CASCADE
  }
  // One operation per target of a deployment; also serves
  // ListDeploymentOperations and GetOperationByDeploymentAndTarget.
  index "deployment_operations_deployment_id_target_key" {
    unique  = true
    columns = [column.deployment_id, column.target]
  }
  // "What is active on this target" and the claim of the oldest pending
  // operation of a target.
  index "deployment_operations_target_state_created_at_id_idx" {
    columns = [column.target, column.state, column.created_at, column.id]
  }
  // RescueExpiredOperations: the active operations whose lease has ended.
  index "deployment_operations_lease_expires_at_idx" {
    columns = [column.lease_expires_at]
    where   = "lease_expires_at IS NOT NULL"
  }
  check "deployment_operations_target_format" {
    expr = "target ~ '^[a-z0-9]([-.a-z0-9]{0,61}[a-z0-9])?$'"
  }
  check "deployment_operations_state_valid" {
    expr = "state IN ('pending', 'running', 'waiting_for_cutover', 'cutting_over', 'completed', 'failed', 'stopped', 'reverted')"
  }
  check "deployment_operations_attempt_positive" {
    expr = "attempt >= 1"
  }
  check "deployment_operations_started_at_set" {
    expr = "state NOT IN ('running', 'waiting_for_cutover', 'cutting_over', 'completed', 'failed', 'reverted') OR started_at IS NOT NULL"
  }
  check "deployment_operations_finished_at_iff_terminal" {
    expr = "(state IN ('completed', 'failed', 'stopped', 'reverted')) = (finished_at IS NOT NULL)"
  }
  check "deployment_operations_finished_after_started" {
    expr = "finished_at IS NULL OR started_at IS NULL OR finished_at >= started_at"
  }
  check "deployment_operations_claim_pair" {
    expr = "(claimed_by IS NULL) = (claimed_at IS NULL)"
  }
  check "deployment_operations_last_error_length" {
    expr = "char_length(last_error) <= 4096"
  }
  check "deployment_operations_lease_only_active" {
    expr = "lease_expires_at IS NULL OR state IN ('running', 'waiting_for_cutover', 'cutting_over')"
  }
  check "deployment_operations_lease_token_nonnegative" {
    expr = "lease_token >= 0"
  }
}
