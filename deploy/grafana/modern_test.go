package grafana

import (
	"context"
	"strings"
	"testing"

	"github.com/logpipe/logpipe/internal/chdbtest"
	"github.com/logpipe/logpipe/schemas"
)

// TestDashboardOnModern runs every ClickHouse panel's SQL, time macros
// bound, on the modern schema of the embedded modern engine: the dashboard
// holds one text per panel (the catalogue's base text), so it must serve
// both the 18.16 server (TestDashboard) and modern servers.
func TestDashboardOnModern(t *testing.T) {
	_, sqls := dashboard(t)
	e := chdbtest.Open(t)
	if _, err := schemas.MigrateTarget(context.Background(), e.DB(), schemas.Target{}); err != nil {
		t.Fatal(err)
	}
	if len(sqls) == 0 {
		t.Fatal("no panel SQL")
	}
	for name, sql := range sqls {
		bound := strings.NewReplacer(fromMacro, "toDateTime('2026-11-24 00:00:00')", toMacro, "toDateTime('2026-11-25 00:00:00')").Replace(sql)
		if err := e.Exec(bound); err != nil {
			t.Errorf("%s: panel SQL fails on ClickHouse %s: %v\n%s", name, e.Version(), err, bound)
		}
	}
}
