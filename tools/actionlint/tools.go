//go:build tools

// Package tools pins the actionlint version that `make lint-workflows`
// builds into ./bin; go.mod here is the only place that version is written.
package tools

import _ "github.com/rhysd/actionlint/cmd/actionlint"
