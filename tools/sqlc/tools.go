//go:build tools

// Package tools pins the sqlc code generator used by make generate and make check.
package tools

import _ "github.com/sqlc-dev/sqlc/cmd/sqlc"
