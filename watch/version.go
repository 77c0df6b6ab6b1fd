package watch

import (
	"context"
	"log/slog"
	"sync"

	"github.com/logpipe/logpipe/schemas"
)

// serverVersion remembers the server's version, read on first use, so each
// rule runs the catalogue text written for that server (schemas.Variant).
type serverVersion struct {
	mu    sync.Mutex
	known bool
	v     schemas.ServerVersion
}

// get returns the version; until it can be read (server down), the zero
// version, which selects the text every server accepts.
func (s *serverVersion) get(ctx context.Context, db schemas.Querier, log *slog.Logger) schemas.ServerVersion {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.known {
		return s.v
	}
	v, err := schemas.DetectServerVersion(ctx, db)
	if err != nil {
		log.Debug("watch: server version unknown, using the catalogue's base texts", "err", err)
		return schemas.ServerVersion{}
	}
	s.v, s.known = v, true
	return v
}
