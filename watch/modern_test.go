package watch

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/logpipe/logpipe/internal/chdbtest"
	"github.com/logpipe/logpipe/schemas"
)

// TestDefaultRulesOnModern renders every default rule as a watch cycle
// would, in the text chosen for the engine's version, and runs it on the
// modern schema of the embedded modern engine.
func TestDefaultRulesOnModern(t *testing.T) {
	e := chdbtest.Open(t)
	ctx := context.Background()
	if _, err := schemas.MigrateTarget(ctx, e.DB(), schemas.Target{}); err != nil {
		t.Fatal(err)
	}
	var v serverVersion
	version := v.get(ctx, e.DB(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if !version.AtLeast(schemas.ModernSchema) {
		t.Fatalf("server version %s", version)
	}
	rules, err := compileRules(DefaultRules(), map[string]bool{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rules {
		sql, err := render(r.query.For(version), r.Params, time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC))
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Exec(sql); err != nil {
			t.Errorf("rule %s fails on ClickHouse %s: %v\n%s", r.Name, e.Version(), err, sql)
		}
	}
}
