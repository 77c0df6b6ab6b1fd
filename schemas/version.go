package schemas

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// ServerVersion is a ClickHouse server's major.minor version, as
// SELECT version() reports it ("26.5.1.1" is 26.5). The zero value means
// unknown: renderings then take the oldest supported form (18.16).
type ServerVersion struct {
	Major, Minor int
}

// Versions the renderings know about.
var (
	// Oldest is the oldest supported server (Debian bookworm's).
	Oldest = ServerVersion{18, 16}
	// ModernSchema is the first version given the modern schema rendering
	// (DateTime64, TTL with ttl_only_drop_parts, codecs, skip indexes,
	// LowCardinality without the experimental setting): 20.x had all of
	// them but 24.x is the oldest release line users run and the tests
	// cover (see docs/operations.md, "Supported ClickHouse versions").
	ModernSchema = ServerVersion{24, 1}
)

// ParseServerVersion reads "26.5.1.1", "24.8" or "18.16.1".
func ParseServerVersion(s string) (ServerVersion, error) {
	parts := strings.Split(strings.TrimSpace(s), ".")
	if len(parts) < 2 {
		return ServerVersion{}, fmt.Errorf("server version %q: want MAJOR.MINOR[.PATCH...]", s)
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil || major <= 0 || minor < 0 {
		return ServerVersion{}, fmt.Errorf("server version %q: want MAJOR.MINOR[.PATCH...]", s)
	}
	return ServerVersion{major, minor}, nil
}

func (v ServerVersion) String() string {
	if v.IsZero() {
		return "unknown"
	}
	return fmt.Sprintf("%d.%d", v.Major, v.Minor)
}

// IsZero reports whether the version is unknown.
func (v ServerVersion) IsZero() bool { return v == ServerVersion{} }

// AtLeast reports whether v is o or newer.
func (v ServerVersion) AtLeast(o ServerVersion) bool {
	return v.Major > o.Major || v.Major == o.Major && v.Minor >= o.Minor
}

// Querier runs a query and returns its rows as text; *chclient.Conn has it.
type Querier interface {
	QueryStrings(ctx context.Context, query string, args ...any) ([][]string, error)
}

// DetectServerVersion asks the server for SELECT version().
func DetectServerVersion(ctx context.Context, db Querier) (ServerVersion, error) {
	rows, err := db.QueryStrings(ctx, "SELECT version()")
	if err != nil {
		return ServerVersion{}, fmt.Errorf("read server version: %w", err)
	}
	if len(rows) != 1 || len(rows[0]) != 1 {
		return ServerVersion{}, fmt.Errorf("read server version: SELECT version() returned %d rows", len(rows))
	}
	return ParseServerVersion(rows[0][0])
}
