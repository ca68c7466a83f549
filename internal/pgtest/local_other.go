//go:build !unix

package pgtest

import (
	"context"
	"errors"
)

var errLocalUnsupported = errors.New("pgtest: local provider: only supported on Unix-like systems")

type localBins struct{}

func findLocalBins() (localBins, error) { return localBins{}, errLocalUnsupported }

func startLocal(context.Context) (*Server, error) { return nil, errLocalUnsupported }
