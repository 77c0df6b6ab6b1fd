package watch

import (
	"strings"
	"testing"
	"time"

	"github.com/logpipe/logpipe/schemas"
)

// TestRenderRelativeTimes: "now-1h" values and now()-based catalogue
// defaults are bound from the watch clock, other values as given.
func TestRenderRelativeTimes(t *testing.T) {
	q, err := schemas.ParseQuery("t", `-- question: q?
-- param: since DateTime = now() - INTERVAL 7 DAY
-- param: until DateTime = now() + INTERVAL 1 DAY
-- param: at DateTime = now()
-- param: fixed DateTime = toDateTime('2020-01-01 00:00:00')
-- param: n UInt64 = 5
SELECT {since:DateTime}, {until:DateTime}, {at:DateTime}, {fixed:DateTime}, {n:UInt64}`)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 25, 8, 30, 0, 0, time.UTC)
	for _, tc := range []struct {
		params map[string]string
		want   string
	}{
		{nil, "SELECT toDateTime('2026-11-18 08:30:00', 'UTC'), toDateTime('2026-11-26 08:30:00', 'UTC'), toDateTime('2026-11-25 08:30:00', 'UTC'), (toDateTime('2020-01-01 00:00:00')), 5"},
		{map[string]string{"since": "now-90m", "until": "now + 2d", "at": "now", "n": "7"},
			"SELECT toDateTime('2026-11-25 07:00:00', 'UTC'), toDateTime('2026-11-27 08:30:00', 'UTC'), toDateTime('2026-11-25 08:30:00', 'UTC'), (toDateTime('2020-01-01 00:00:00')), 7"},
		{map[string]string{"since": "2026-11-01 00:00:00", "until": "now-1w"},
			"SELECT toDateTime('2026-11-01 00:00:00', 'UTC'), toDateTime('2026-11-18 08:30:00', 'UTC'), toDateTime('2026-11-25 08:30:00', 'UTC'), (toDateTime('2020-01-01 00:00:00')), 5"},
	} {
		got, err := render(q, tc.params, now)
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("%v:\n got %s\nwant %s", tc.params, got, tc.want)
		}
	}
}

// TestDefaultRulesCompile: every default rule names a catalogue query and
// declares key columns the query returns.
func TestDefaultRulesCompile(t *testing.T) {
	rs, err := compileRules(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		for _, k := range r.Key {
			if !strings.Contains(r.query.SQL, k) {
				t.Errorf("rule %s: key column %s not in its query", r.Name, k)
			}
		}
	}
}

func TestMatch(t *testing.T) {
	for _, tc := range []struct{ col, typ, val, want string }{
		{"job", "LowCardinality(String)", "etl", "CAST(`job` AS String) = 'etl'"},
		{"start_time", "DateTime", "2026-11-25 03:00:00", "`start_time` = toDateTime('2026-11-25 03:00:00', 'UTC')"},
		{"t", "Nullable(DateTime('UTC'))", "2026-11-25 03:00:00", "`t` = toDateTime('2026-11-25 03:00:00', 'UTC')"},
		{"day", "Date", "2026-11-25", "`day` = toDate('2026-11-25')"},
		{"query", "String", `a'b\c`, `CAST(` + "`query`" + ` AS String) = 'a\'b\\c'`},
	} {
		if got := match(tc.col, tc.typ, tc.val); got != tc.want {
			t.Errorf("match(%s, %s, %s) = %s, want %s", tc.col, tc.typ, tc.val, got, tc.want)
		}
	}
}

func TestQualify(t *testing.T) {
	for _, tc := range []struct{ db, in, want string }{
		{"logpipe", "SELECT a FROM cdn_requests WHERE x", "SELECT a FROM logpipe.cdn_requests WHERE x"},
		{"logpipe", "SELECT * FROM\n(\nSELECT 1 FROM job_runs\n) AS r JOIN job_expected_runs USING (job)", "SELECT * FROM\n(\nSELECT 1 FROM logpipe.job_runs\n) AS r JOIN logpipe.job_expected_runs USING (job)"},
		{"logpipe", "SELECT countIf(from_cache) FROM system.parts, numbers(3) FROM alerts FINAL", "SELECT countIf(from_cache) FROM system.parts, numbers(3) FROM logpipe.alerts FINAL"},
		{"logpipe", "SELECT 1 FROM t", "SELECT 1 FROM logpipe.t"},
		{"my-db", "select 1 from t", "select 1 from `my-db`.t"},
		{"", "SELECT 1 FROM t", "SELECT 1 FROM t"},
	} {
		if got := Qualify(tc.in, tc.db); got != tc.want {
			t.Errorf("Qualify(%q, %q) =\n%s\nwant\n%s", tc.in, tc.db, got, tc.want)
		}
	}
}
