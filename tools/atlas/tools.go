//go:build tools

// Package tools pins the Atlas CLI used by make migration and make check.
package tools

import _ "ariga.io/atlas/cmd/atlas"
