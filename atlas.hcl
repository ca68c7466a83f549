// Atlas project file. The schema lives in schema.hcl; versioned migrations in
// db/migrations. `make migration` and `make check` run Atlas with --env local
// against a throwaway dev database whose URL the Makefile passes in
// ATLAS_DEV_URL (schema-scoped with search_path=public, so the generated
// migrations are not schema-qualified).

variable "dev_url" {
  type    = string
  default = getenv("ATLAS_DEV_URL")
}

variable "url" {
  type    = string
  default = getenv("DATABASE_URL")
}

env "local" {
  src = "file://schema.hcl"
  dev = var.dev_url
  url = var.url
  migration {
    dir = "file://db/migrations"
  }
  format {
    migrate {
      diff = "{{ sql . \"  \" }}"
    }
  }
}

// Lint policy of `atlas migrate lint` (v0.12), which `make review` runs on
// the migration files a change adds (internal/review adds its own rules).
// Every analyzer v0.12 has reports errors; a reviewed exception is a line
// `-- deploydb:allow <rule> <reason>` in the migration file.
lint {
  destructive {
    error = true
  }
  data_depend {
    error = true
  }
  incompatible {
    error = true
  }
  condrop {
    error = true
  }
  concurrent_index {
    error        = true
    check_create = true
    check_drop   = true
    check_txmode = true
  }
  naming {
    error   = true
    match   = "^[a-z][a-z0-9_]*$"
    message = "must be lower snake_case"
    index {
      match   = "^[a-z][a-z0-9_]*_(idx|key)$"
      message = "must be lower snake_case and end in _idx (or _key when unique)"
    }
    foreign_key {
      match   = "^[a-z][a-z0-9_]*_fkey$"
      message = "must be lower snake_case and end in _fkey"
    }
  }
}
