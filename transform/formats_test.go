package transform

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files of the parser tests")

// goldenRow is one line's outcome in a golden file.
type goldenRow struct {
	Line   int            `json:"line"`
	Skip   bool           `json:"skip,omitempty"`
	Error  string         `json:"error,omitempty"`
	Record map[string]any `json:"record,omitempty"`
}

// parserFor builds the parser of a golden input: the format is the
// directory name, options come from NAME.options.json when present.
func parserFor(t testing.TB, logFile string) Parser {
	t.Helper()
	format := filepath.Base(filepath.Dir(logFile))
	var opts ParserOptions
	if b, err := os.ReadFile(strings.TrimSuffix(logFile, ".log") + ".options.json"); err == nil {
		if err := json.Unmarshal(b, &opts); err != nil {
			t.Fatalf("%s options: %v", logFile, err)
		}
	}
	p, err := NewParserWith(format, opts)
	if err != nil {
		t.Fatalf("%s: %v", logFile, err)
	}
	return p
}

// parseLine runs a parser of either kind on one line.
func parseLine(p Parser, line []byte) (any, error) {
	switch p := p.(type) {
	case JobParser:
		var e JobEvent
		err := p.Parse(line, &e)
		return e, err
	case CDNParser:
		var r CDNRequest
		err := p.Parse(line, &r)
		return r, err
	}
	panic("parser of no kind")
}

// nonZero turns a record into a map of its non-zero fields, so that
// golden files show what a parser set.
func nonZero(t testing.TB, rec any) map[string]any {
	b, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	var prune func(m map[string]any)
	prune = func(m map[string]any) {
		for k, v := range m {
			switch v := v.(type) {
			case nil, bool:
				if v != true {
					delete(m, k)
				}
			case float64:
				if v == 0 {
					delete(m, k)
				}
			case string:
				if v == "" || v == "0001-01-01T00:00:00Z" {
					delete(m, k)
				}
			case []any:
				if len(v) == 0 {
					delete(m, k)
				}
			case map[string]any:
				prune(v)
				if len(v) == 0 {
					delete(m, k)
				}
			}
		}
	}
	prune(m)
	return m
}

func TestGolden(t *testing.T) {
	logs, err := filepath.Glob("testdata/*/*.log")
	if err != nil || len(logs) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	seen := map[string]bool{}
	for _, logFile := range logs {
		seen[filepath.Base(filepath.Dir(logFile))] = true
		t.Run(strings.TrimPrefix(logFile, "testdata/"), func(t *testing.T) {
			p := parserFor(t, logFile)
			in, err := os.ReadFile(logFile)
			if err != nil {
				t.Fatal(err)
			}
			var rows []goldenRow
			EachLine(in, func(n int, line []byte) {
				rec, err := parseLine(p, line)
				row := goldenRow{Line: n}
				switch {
				case errors.Is(err, ErrSkip):
					row.Skip = true
				case err != nil:
					row.Error = err.Error()
				default:
					row.Record = nonZero(t, rec)
				}
				rows = append(rows, row)
			})
			got, err := json.MarshalIndent(rows, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			golden := strings.TrimSuffix(logFile, ".log") + ".golden"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./transform -run TestGolden -update)", err)
			}
			if string(got) != string(want) {
				t.Errorf("%s differs from the parse (go test ./transform -run TestGolden -update, then review the diff):\n%s", golden, firstDiff(string(want), string(got)))
			}
		})
	}
	for _, f := range Formats() {
		if !seen[f] {
			t.Errorf("format %s has no golden input under testdata/%s/", f, f)
		}
	}
}

func firstDiff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return "line " + strconv.Itoa(i+1) + ":\n  want " + w + "\n  got  " + g
		}
	}
	return ""
}

func TestNewParserWithRejectsBadOptions(t *testing.T) {
	cases := []struct {
		format string
		opts   ParserOptions
		want   string
	}{
		{"nope", ParserOptions{}, `unknown format "nope"`},
		{"cloudflare-json", ParserOptions{LogFormat: "$status"}, `format "cloudflare-json" takes no log_format option`},
		{"nginx-combined", ParserOptions{LogFormat: "$status"}, `format "nginx-combined" takes no log_format option`},
		{"fastly-json", ParserOptions{Fields: []string{"a"}}, `format "fastly-json" takes no fields option`},
		{"nginx", ParserOptions{FieldMap: map[string]string{"job": "x"}}, `format "nginx" takes no field_map option`},
		{"nginx", ParserOptions{LogFormat: `$remote_addr $status`}, `must log a time`},
		{"nginx", ParserOptions{LogFormat: `$time_local $request$status`}, `$status directly follows $request`},
		{"nginx", ParserOptions{LogFormat: `${time_local $request $status`}, `unclosed ${`},
		{"apache", ParserOptions{LogFormat: `%{%d/%b}t "%r" %>s`}, `custom time format`},
		{"cloudfront-realtime", ParserOptions{Fields: []string{"c-ip", "sc-status"}}, `must include "timestamp"`},
		{"cloudfront-realtime", ParserOptions{Fields: []string{"timestamp", "sc-status", "sc-status"}}, `"sc-status" listed twice`},
		{"cloudfront-standard", ParserOptions{Fields: []string{"date", "time"}}, `must include "sc-status"`},
		{"job-json", ParserOptions{FieldMap: map[string]string{"jobname": "x"}}, `unknown field "jobname"`},
		{"job-logfmt", ParserOptions{FieldMap: map[string]string{"job": ""}}, `field "job" has an empty key`},
	}
	for _, c := range cases {
		p, err := NewParserWith(c.format, c.opts)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("NewParserWith(%s, %+v) = %v, %v; want error containing %q", c.format, c.opts, p, err, c.want)
		}
		if err != nil && p != nil {
			t.Errorf("NewParserWith(%s) returned a parser with its error", c.format)
		}
	}
	for _, name := range Formats() {
		if _, err := NewParser(name); err != nil {
			t.Errorf("NewParser(%s): %v", name, err)
		}
	}
}

// TestIncidentRowsAreFlagged parses, per vendor, the golden line of the
// June 2017 incident shape (a personal page with a session cookie served
// from cache) and checks that enrichment flags it.
func TestIncidentRowsAreFlagged(t *testing.T) {
	enr, err := NewEnricher(EnrichConfig{
		HashKey:        []byte("0123456789abcdef0123456789abcdef"),
		SessionCookies: []string{"session_id"},
		PathClasses:    []PathClassRule{{Class: "personal", Patterns: []string{"/mypage/*", "/transaction/*", "/api/users/me"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		file string
		line int
		opts ParserOptions
	}{
		{"testdata/cloudfront-standard/standard.log", 4, ParserOptions{}},
		{"testdata/cloudfront-realtime/default.log", 1, ParserOptions{}},
		{"testdata/cloudflare-json/http_requests.log", 1, ParserOptions{}},
		{"testdata/akamai-datastream2/datastream2.log", 1, ParserOptions{}},
		{"testdata/fastly-json/fastly.log", 1, ParserOptions{}},
		{"testdata/nginx/cache.log", 1, ParserOptions{LogFormat: nginxCacheFormat}},
		{"testdata/apache/cache.log", 1, ParserOptions{LogFormat: apacheCacheFormat}},
	}
	for _, c := range cases {
		p, err := NewParserWith(filepath.Base(filepath.Dir(c.file)), c.opts)
		if err != nil {
			t.Fatal(err)
		}
		in, err := os.ReadFile(c.file)
		if err != nil {
			t.Fatal(err)
		}
		var r CDNRequest
		EachLine(in, func(n int, line []byte) {
			if n == c.line {
				if err := p.(CDNParser).Parse(line, &r); err != nil {
					t.Fatalf("%s:%d: %v", c.file, n, err)
				}
			}
		})
		enr.CDN(&r)
		if !r.FromCache || !r.FlagPersonalCached || r.PathClass != "personal" {
			t.Errorf("%s:%d: from_cache=%v personal_cached=%v class=%q, want a flagged personal cache hit", c.file, c.line, r.FromCache, r.FlagPersonalCached, r.PathClass)
		}
		if r.Secret != (Secrets{}) || r.ClientIPHash == 0 {
			t.Errorf("%s:%d: secrets not hashed: %+v ip_hash=%d", c.file, c.line, r.Secret, r.ClientIPHash)
		}
		if c.file != "testdata/apache/cache.log" && (!r.HasSessionCookie || !r.FlagAuthCached) {
			t.Errorf("%s:%d: session cookie not seen (has_session_cookie=%v auth_cached=%v)", c.file, c.line, r.HasSessionCookie, r.FlagAuthCached)
		}
	}
}

// TestParsersAreSafeForConcurrentUse: the pipeline shares one parser per
// stream between its partition workers. Four goroutines parse the same
// lines at once and each must get exactly what one parser alone gets
// (shared scratch state would mix records up); make test also runs this
// under -race, which reports any unsynchronised access.
func TestParsersAreSafeForConcurrentUse(t *testing.T) {
	logs, _ := filepath.Glob("testdata/*/*.log")
	show := func(p Parser, line []byte) string {
		rec, err := parseLine(p, line)
		return fmt.Sprintf("%+v %v", rec, err)
	}
	for _, logFile := range logs {
		p := parserFor(t, logFile)
		in, err := os.ReadFile(logFile)
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		EachLine(in, func(_ int, line []byte) { want = append(want, show(p, line)) })
		errs := make(chan string, 4)
		for g := 0; g < 4; g++ {
			go func() {
				i, bad := 0, ""
				for range 20 {
					i = 0
					EachLine(in, func(_ int, line []byte) {
						if got := show(p, line); got != want[i] && bad == "" {
							bad = fmt.Sprintf("%s line %d: concurrently parsed as\n%s\nalone as\n%s", logFile, i+1, got, want[i])
						}
						i++
					})
				}
				errs <- bad
			}()
		}
		for g := 0; g < 4; g++ {
			if bad := <-errs; bad != "" {
				t.Error(bad)
			}
		}
	}
}
