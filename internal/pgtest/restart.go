package pgtest

import (
	"context"
	"errors"
	"time"
)

// ErrRestartUnsupported is returned by Restart for servers pgtest cannot
// restart (every provider but local).
var ErrRestartUnsupported = errors.New("pgtest: only the local provider can restart its server")

// Restart stops the server the way a crash would (an immediate shutdown: no
// checkpoint, clients cut off), keeps it down for down, and starts it again
// on the same port and data directory, so existing URLs keep working. It
// returns once the server accepts connections again. It is meant for
// failure tests; only the local provider supports it.
func (s *Server) Restart(ctx context.Context, down time.Duration) error {
	if s.restart == nil {
		return ErrRestartUnsupported
	}
	return s.restart(ctx, down)
}
