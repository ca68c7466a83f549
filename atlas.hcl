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
