package warehouse

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/logpipe/logpipe/internal/chdbtest"
	"github.com/logpipe/logpipe/schemas"
)

// TestRetentionWithTTL: on the modern schema (embedded 26.5) a table with
// retention has a TTL; retention reports its old partitions instead of
// dropping them, and SyncTTL brings the TTL in step with a changed rule.
func TestRetentionWithTTL(t *testing.T) {
	e := chdbtest.Open(t)
	ctx := context.Background()
	db := e.DB()
	if _, err := schemas.MigrateTarget(ctx, db, schemas.Target{Retention: map[string]time.Duration{"cdn_requests": 36 * time.Hour}}); err != nil {
		t.Fatal(err)
	}
	// Days in the future, so the server's own TTL (on its real clock)
	// leaves them alone; retention runs as of a later, injected now.
	base := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, 10)
	var days []string
	for _, d := range []int{0, 1, 3} {
		day := base.AddDate(0, 0, d).Format(time.DateOnly)
		days = append(days, day)
		e.MustExec(t, fmt.Sprintf("INSERT INTO cdn_requests (time, host, path) SELECT toDateTime('%s 10:00:00', 'UTC') + number, 'h', '/' FROM numbers(10)", day))
	}
	w := &Warehouse{sql: db, db: e.Database(), Now: func() time.Time { return base.AddDate(0, 0, 3).Add(12 * time.Hour) }}
	rules := map[string]time.Duration{"cdn_requests": 36 * time.Hour}
	for _, apply := range []bool{false, true} {
		ps, err := w.Retention(ctx, rules, apply)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, p := range ps {
			got = append(got, fmt.Sprintf("%s %d ttl=%v dropped=%v", p.Partition, p.Rows, p.TTL, p.Dropped))
		}
		want := []string{days[0] + " 10 ttl=true dropped=false", days[1] + " 10 ttl=true dropped=false"}
		if strings.Join(got, "; ") != strings.Join(want, "; ") {
			t.Errorf("apply=%v: retention = %q, want %q", apply, got, want)
		}
	}
	if got := e.MustQuery(t, "SELECT count() FROM cdn_requests"); got[0][0] != "30" {
		t.Errorf("retention on a TTL table removed rows: %s left of 30", got[0][0])
	}

	if cs, err := w.SyncTTL(ctx, rules, true); err != nil || len(cs) != 0 {
		t.Fatalf("SyncTTL with the migrate-time rule = %+v, %v; want no change", cs, err)
	}
	longer := map[string]time.Duration{"cdn_requests": 72 * time.Hour, "job_expected_runs": time.Hour} // the second has no TTL: untouched
	cs, err := w.SyncTTL(ctx, longer, false)
	if err != nil || len(cs) != 1 || cs[0].From != "toDateTime(time) + toIntervalHour(36)" || cs[0].To != "toDateTime(time) + toIntervalDay(3)" || cs[0].Applied {
		t.Fatalf("SyncTTL dry run = %+v, %v", cs, err)
	}
	if ddl := e.MustQuery(t, "SHOW CREATE TABLE cdn_requests")[0][0]; !strings.Contains(ddl, "toIntervalHour(36)") {
		t.Fatalf("dry run changed the TTL:\n%s", ddl)
	}
	if cs, err = w.SyncTTL(ctx, longer, true); err != nil || len(cs) != 1 || !cs[0].Applied {
		t.Fatalf("SyncTTL apply = %+v, %v", cs, err)
	}
	if ddl := e.MustQuery(t, "SHOW CREATE TABLE cdn_requests")[0][0]; !strings.Contains(ddl, "TTL toDateTime(time) + toIntervalDay(3)") {
		t.Fatalf("TTL not set:\n%s", ddl)
	}
	if cs, err = w.SyncTTL(ctx, longer, true); err != nil || len(cs) != 0 {
		t.Fatalf("SyncTTL after apply = %+v, %v; want no change", cs, err)
	}
}
