package schemas

import (
	"strings"
	"testing"
)

func TestQueryVariants(t *testing.T) {
	q, err := ParseQuery("v", `-- question: q?
-- param: since DateTime
SELECT 'base', {since:DateTime}
-- variant: 21.8  -- window functions
SELECT 'v21', {since:DateTime};
-- variant: 24.1
-- a comment inside the variant
SELECT 'v24', {since:DateTime}
`)
	if err != nil {
		t.Fatal(err)
	}
	if q.SQL != "SELECT 'base', {since:DateTime}" || len(q.Variants) != 2 || q.Variants[0].Why != "window functions" {
		t.Fatalf("parsed %q %+v", q.SQL, q.Variants)
	}
	for _, tt := range []struct {
		version string
		want    string
	}{
		{"", "'base'"},
		{"18.16.1", "'base'"},
		{"21.7", "'base'"},
		{"21.8.3.44", "'v21'"},
		{"23.12", "'v21'"},
		{"24.1", "'v24'"},
		{"26.5.1.1", "'v24'"},
	} {
		var v ServerVersion
		if tt.version != "" {
			if v, err = ParseServerVersion(tt.version); err != nil {
				t.Fatal(err)
			}
		}
		sql, err := q.For(v).Render(map[string]string{"since": "2026-11-20 00:00:00"})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(sql, "SELECT "+tt.want+", toDateTime(") || strings.HasSuffix(sql, ";") {
			t.Errorf("server %q ran %q, want the %s text", tt.version, sql, tt.want)
		}
	}
	if got := len(q.Texts()); got != 3 {
		t.Errorf("Texts() has %d entries, want 3", got)
	}
	for _, bad := range []struct{ text, want string }{
		{"-- question: q\nSELECT 1\n-- variant: 24.1\nSELECT {x:String}", "not declared"},
		{"-- question: q\nSELECT 1\n-- variant: 24.1\n", "has no SQL"},
		{"-- question: q\nSELECT 1\n-- variant: 24.1\nSELECT 2\n-- variant: 21.8\nSELECT 3", "increasing version order"},
		{"-- question: q\nSELECT 1\n-- variant: 18.16\nSELECT 2", "variants are for newer servers"},
		{"-- question: q\nSELECT 1\n-- variant: latest\nSELECT 2", "want '-- variant: MAJOR.MINOR"},
	} {
		if _, err := ParseQuery("bad", bad.text); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("ParseQuery(%q) err = %v, want %q", bad.text, err, bad.want)
		}
	}
}

func TestParseServerVersion(t *testing.T) {
	for in, want := range map[string]ServerVersion{"26.5.1.1": {26, 5}, "24.8": {24, 8}, " 18.16.1\n": {18, 16}} {
		if got, err := ParseServerVersion(in); err != nil || got != want {
			t.Errorf("ParseServerVersion(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "24", "x.y", "-1.2"} {
		if _, err := ParseServerVersion(in); err == nil {
			t.Errorf("ParseServerVersion(%q) accepted", in)
		}
	}
}

// TestQuerySettings: a header's settings go at the end of the text For
// picks, for servers from their version on; 18.16 (and Render) never see
// them.
func TestQuerySettings(t *testing.T) {
	q, err := ParseQuery("t", `-- question: q?
-- settings: 24.1 allow_experimental_analyzer = 0  -- plans faster
-- settings: 25.8 max_threads = 4
SELECT 1
-- variant: 24.8
SELECT 2
`)
	if err != nil {
		t.Fatal(err)
	}
	if len(q.Settings) != 2 || q.Settings[0].Why != "plans faster" || q.Settings[1].Text != "max_threads = 4" {
		t.Fatalf("settings %+v", q.Settings)
	}
	for _, tc := range []struct {
		v    ServerVersion
		want string
	}{
		{ServerVersion{}, "SELECT 1"},
		{Oldest, "SELECT 1"},
		{ServerVersion{23, 8}, "SELECT 1"},
		{ServerVersion{24, 3}, "SELECT 1\nSETTINGS allow_experimental_analyzer = 0"},
		{ServerVersion{24, 8}, "SELECT 2\nSETTINGS allow_experimental_analyzer = 0"},
		{ServerVersion{26, 5}, "SELECT 2\nSETTINGS allow_experimental_analyzer = 0, max_threads = 4"},
	} {
		if got := q.For(tc.v).SQL; got != tc.want {
			t.Errorf("For(%s) = %q, want %q", tc.v, got, tc.want)
		}
	}
	if sql, _ := q.Render(nil); strings.Contains(sql, "SETTINGS") {
		t.Errorf("Render = %q", sql)
	}
	for _, bad := range []string{
		"-- question: q\n-- settings: allow_experimental_analyzer = 0\nSELECT 1", // no version
		"-- question: q\n-- settings: 24.1 a = 0; DROP TABLE t\nSELECT 1",        // not one name = value
	} {
		if _, err := ParseQuery("bad", bad); err == nil {
			t.Errorf("accepted:\n%s", bad)
		}
	}
}
