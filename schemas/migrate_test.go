package schemas

import (
	"context"
	"os"
	"strings"
	"testing"
)

func TestSplitStatements(t *testing.T) {
	sql := "-- header\nCREATE TABLE a (x UInt8) ENGINE = Memory\n;\n-- only a comment\n;\nCREATE VIEW b AS SELECT 1\n;\n"
	got := SplitStatements(sql)
	if len(got) != 2 || !strings.HasPrefix(got[0], "-- header\nCREATE TABLE a") || got[1] != "CREATE VIEW b AS SELECT 1" {
		t.Fatalf("SplitStatements = %q", got)
	}
}

func TestMigrationsLoad(t *testing.T) {
	ms, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 || ms[0].Version != 1 {
		t.Fatalf("migrations = %+v", ms)
	}
	for i, m := range ms {
		if i > 0 && m.Version <= ms[i-1].Version {
			t.Errorf("migration %d out of order", m.Version)
		}
		if len(m.Statements) == 0 {
			t.Errorf("migration %04d_%s has no statements", m.Version, m.Name)
		}
		for _, st := range m.Statements {
			// Settings belong in the server profile, never in DDL.
			if strings.Contains(strings.ToLower(st), "allow_experimental") {
				t.Errorf("migration %04d_%s sets an experimental setting in DDL", m.Version, m.Name)
			}
		}
	}
}

func TestQueryRender(t *testing.T) {
	q, err := ParseQuery("t", "-- question: q?\n-- param: since DateTime = now() - INTERVAL 1 DAY -- from\n-- param: name String\n-- param: n UInt64 = 5\nSELECT {name:String}, {since:DateTime} LIMIT {n:UInt64};\n")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		params  map[string]string
		want    string
		wantErr string
	}{
		{map[string]string{"name": "o'hare"}, `SELECT 'o\'hare', (now() - INTERVAL 1 DAY) LIMIT 5`, ""},
		{map[string]string{"name": "x", "since": "2026-11-20 01:02:03", "n": "2"}, `SELECT 'x', toDateTime('2026-11-20 01:02:03', 'UTC') LIMIT 2`, ""},
		{map[string]string{}, "", "name (String) is required"},
		{map[string]string{"name": "x", "n": "1; DROP TABLE x"}, "", "not an unsigned integer"},
		{map[string]string{"name": "x", "since": "yesterday"}, "", "not a date-time"},
		{map[string]string{"name": "x", "bogus": "1"}, "", "no parameter \"bogus\""},
	}
	for _, tt := range tests {
		got, err := q.Render(tt.params)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Render(%v) err = %v, want %q", tt.params, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Render(%v) = %q, %v; want %q", tt.params, got, err, tt.want)
		}
	}
	if _, err := ParseQuery("bad", "-- question: q\nSELECT {x:String}"); err == nil {
		t.Error("undeclared placeholder accepted")
	}
}

// TestQueryLets: a let is inlined as a scalar subquery by Render, and
// computed first (one query each, in order, with the earlier lets bound)
// by RenderWith.
func TestQueryLets(t *testing.T) {
	q, err := ParseQuery("t", `-- question: q?
-- param: at DateTime = now()  -- the moment
-- let: from DateTime  -- the earliest day
--   SELECT min(day)
--   FROM t WHERE x < {at:DateTime}
-- let: n UInt64  -- how many
--   SELECT count() FROM t WHERE time >= {from:DateTime}
-- example:
--   a
SELECT a FROM t WHERE time >= {from:DateTime} LIMIT {n:UInt64}
`)
	if err != nil {
		t.Fatal(err)
	}
	if len(q.Lets) != 2 || q.Lets[0].Doc != "the earliest day" || q.Lets[1].SQL != "SELECT count() FROM t WHERE time >= {from:DateTime}" || strings.TrimSpace(q.Example) != "a" {
		t.Fatalf("lets %+v, example %q", q.Lets, q.Example)
	}
	at := map[string]string{"at": "2026-11-20 00:00:00"}
	inline, err := q.Render(at)
	if err != nil {
		t.Fatal(err)
	}
	from := "(\nSELECT min(day)\nFROM t WHERE x < toDateTime('2026-11-20 00:00:00', 'UTC')\n)"
	if want := "SELECT a FROM t WHERE time >= " + from + " LIMIT (\nSELECT count() FROM t WHERE time >= " + from + "\n)"; inline != want {
		t.Errorf("Render = %q, want %q", inline, want)
	}
	var asked []string
	scalar := func(_ context.Context, sql string) (string, error) {
		asked = append(asked, sql)
		return []string{"1795392000", "42"}[len(asked)-1], nil
	}
	two, err := q.RenderWith(context.Background(), scalar, at)
	if err != nil {
		t.Fatal(err)
	}
	if want := "SELECT a FROM t WHERE time >= toDateTime(1795392000) LIMIT 42"; two != want {
		t.Errorf("RenderWith = %q, want %q", two, want)
	}
	if want := "SELECT toString(toUInt64((\nSELECT count() FROM t WHERE time >= toDateTime(1795392000)\n)))"; len(asked) != 2 || asked[1] != want {
		t.Errorf("let queries %q, want the second %q", asked, want)
	}
	if _, err := q.Render(map[string]string{"from": "2026-11-20"}); err == nil {
		t.Error("a value for a let accepted")
	}
	for _, bad := range []string{
		"-- question: q\n-- let: x Float64\n--   SELECT 1\nSELECT {x:Float64}",        // type
		"-- question: q\n-- let: x UInt64\nSELECT {x:UInt64}",                         // no SQL
		"-- question: q\n-- let: x UInt64\n--   SELECT {y:UInt64}\nSELECT {x:UInt64}", // unknown reference
		"-- question: q\n-- param: x UInt64 = 1\n-- let: x UInt64\n--   SELECT 1\nSELECT {x:UInt64}",
	} {
		if _, err := ParseQuery("bad", bad); err == nil {
			t.Errorf("accepted:\n%s", bad)
		}
	}
}

// TestQueryStringLet: a String let (a list the query filters on) is bound
// as a quoted literal while short, and stays an inlined subquery when
// binding it would pass the server's max_query_size.
func TestQueryStringLet(t *testing.T) {
	q, err := ParseQuery("t", `-- question: q?
-- let: names String  -- the names worth reading
--   SELECT arrayStringConcat(groupArray(name), ',') FROM t
SELECT a FROM t WHERE name {names:In} (SELECT arrayJoin(splitByChar(',', {names:String})))
`)
	if err != nil {
		t.Fatal(err)
	}
	inline := "(\nSELECT arrayStringConcat(groupArray(name), ',') FROM t\n)"
	for _, tc := range []struct {
		value, in, want string
	}{
		{`a,b'c\`, "IN", `'a,b\'c\\'`},
		{"", "IN", "''"},
		{strings.Repeat("x", maxStringLet), "IN", "'" + strings.Repeat("x", maxStringLet) + "'"},
		// too long for a literal: the subquery, which on a cluster needs GLOBAL
		{strings.Repeat("x", maxStringLet+1), "GLOBAL IN", inline},
	} {
		var asked string
		sql, err := q.RenderWith(context.Background(), func(_ context.Context, sql string) (string, error) {
			asked = sql
			return tc.value, nil
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if want := "SELECT a FROM t WHERE name " + tc.in + " (SELECT arrayJoin(splitByChar(',', " + tc.want + ")))"; sql != want {
			t.Errorf("value of %d bytes: RenderWith = %.200q, want %.200q", len(tc.value), sql, want)
		}
		if want := "SELECT toString(((\nSELECT arrayStringConcat(groupArray(name), ',') FROM t\n)))"; asked != want {
			t.Errorf("let query %q, want %q", asked, want)
		}
	}
	if sql, err := q.Render(nil); err != nil || sql != "SELECT a FROM t WHERE name GLOBAL IN (SELECT arrayJoin(splitByChar(',', "+inline+")))" {
		t.Errorf("Render = %q, %v", sql, err)
	}
	if _, err := ParseQuery("bad", "-- question: q\n-- let: n UInt64\n--   SELECT 1\nSELECT 1 WHERE x {n:In} (1)"); err == nil {
		t.Error("{n:In} accepted for a UInt64 let")
	}
}

func TestCatalogueParses(t *testing.T) {
	qs, err := Queries()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		if _, err := q.Render(nil); err != nil && !strings.Contains(err.Error(), "required") {
			t.Errorf("%s: %v", q.Name, err)
		}
	}
}

// TestAnalystDocsCoverCatalogue keeps docs/analysts.md in step with the
// catalogue and the tables.
func TestAnalystDocsCoverCatalogue(t *testing.T) {
	b, err := os.ReadFile("../docs/analysts.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	qs, _ := Queries()
	for _, q := range qs {
		if !strings.HasPrefix(q.Name, "watch_") && !strings.Contains(doc, "`"+q.Name+"`") {
			t.Errorf("docs/analysts.md does not describe catalogue query %s", q.Name)
		}
	}
	for _, tbl := range []string{"job_runs", "job_steps", "job_daily", "job_events", "cdn_requests", "cdn_hourly", "ingest_errors", "job_expected_runs", "cdn_config_changes"} {
		if !strings.Contains(doc, "`"+tbl+"`") {
			t.Errorf("docs/analysts.md does not describe table %s", tbl)
		}
	}
}
