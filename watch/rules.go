// Package watch turns catalogue queries into alerts: each rule runs one
// query of schemas/queries on a schedule, every result row is one alert
// instance keyed by the rule's key columns, and notifications go to JSON or
// Slack-compatible webhooks when an alert opens, is still open after the
// re-notify interval, and resolves. Alert state lives in the ClickHouse
// table alerts, so a restarted watch neither re-sends nor forgets.
package watch

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/logpipe/logpipe/config"
	"github.com/logpipe/logpipe/schemas"
)

// Severities, lowest first.
var severities = []string{"info", "warning", "critical"}

// DefaultRules are used when the config lists no rules.
func DefaultRules() []config.WatchRule {
	return []config.WatchRule{
		{Name: "failed_runs", Severity: "warning", Key: []string{"job", "run_id"},
			Params: map[string]string{"since": "now-24h", "until": "now", "limit": "200"}}, // until = the clock: as of the cycle
		{Name: "stuck_runs", Severity: "warning", Key: []string{"job", "run_id"}},
		{Name: "missed_runs", Severity: "warning", Key: []string{"job", "expected_time"},
			Params: map[string]string{"since": "now-24h"}},
		// A leak pages (severity from its evidence). A personal object
		// cached but served to its own session only is kept as an info
		// alert (alerts table, logpipe query cache_anomalies), not sent
		// unless watch.min_severity is info.
		{Name: "session_mixing", Severity: "critical", Key: []string{"host", "path_template"},
			Params: map[string]string{"since": "now-1h", "until": "now+1h"}},
		{Name: "cache_anomalies", Severity: "info", Key: []string{"host", "path_template"},
			Params: map[string]string{"since": "now-1h", "until": "now+1h"}},
		{Name: "hit_ratio_jumps", Severity: "warning", Key: []string{"host", "path_template"}},
	}
}

// rule is a configured rule with its catalogue query.
type rule struct {
	config.WatchRule
	query schemas.Query
}

func compileRules(rs []config.WatchRule, channels map[string]bool) ([]rule, error) {
	return compileRulesWith(rs, nil, channels)
}

// UserRules reads the rules of dir: each NAME.sql file is a query in the
// catalogue's format (docs/analysts.md) and becomes rule NAME. Optional
// header lines: "-- severity: warning" and "-- key: host, path_template".
func UserRules(dir string) ([]config.WatchRule, map[string]schemas.Query, error) {
	if dir == "" {
		return nil, nil, nil
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.sql"))
	if err != nil {
		return nil, nil, err
	}
	if files == nil {
		if _, err := os.Stat(dir); err != nil {
			return nil, nil, fmt.Errorf("watch.rules_dir: %w", err)
		}
	}
	sort.Strings(files)
	var rules []config.WatchRule
	queries := map[string]schemas.Query{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, nil, fmt.Errorf("watch.rules_dir: %w", err)
		}
		name := strings.TrimSuffix(filepath.Base(f), ".sql")
		if _, err := schemas.LookupQuery(name); err == nil {
			return nil, nil, fmt.Errorf("watch.rules_dir: %s: a built-in query is called %s; rename the file", f, name)
		}
		q, err := schemas.ParseQuery(name, string(b))
		if err != nil {
			return nil, nil, fmt.Errorf("watch.rules_dir: %s: %w", f, err)
		}
		r := config.WatchRule{Name: name}
		for _, l := range strings.Split(string(b), "\n") {
			l = strings.TrimSpace(l)
			if !strings.HasPrefix(l, "--") {
				break
			}
			body := strings.TrimSpace(strings.TrimPrefix(l, "--"))
			if v, ok := strings.CutPrefix(body, "severity:"); ok {
				r.Severity = strings.TrimSpace(v)
			}
			if v, ok := strings.CutPrefix(body, "key:"); ok {
				for _, k := range strings.Split(v, ",") {
					if k = strings.TrimSpace(k); k != "" {
						r.Key = append(r.Key, k)
					}
				}
			}
		}
		queries[name] = q
		rules = append(rules, r)
	}
	return rules, queries, nil
}

func compileRulesWith(rs []config.WatchRule, user map[string]schemas.Query, channels map[string]bool) ([]rule, error) {
	if len(rs) == 0 {
		rs = DefaultRules()
	}
	var out []rule
	seen := map[string]bool{}
	for i, r := range rs {
		where := fmt.Sprintf("watch.rules[%d]", i)
		if r.Name == "" {
			return nil, fmt.Errorf("%s.name: a rule name is required", where)
		}
		if seen[r.Name] {
			return nil, fmt.Errorf("%s.name: rule %q is defined twice", where, r.Name)
		}
		seen[r.Name] = true
		if r.Query == "" {
			r.Query = r.Name
		}
		q, ok := user[r.Query]
		if !ok {
			var err error
			if q, err = schemas.LookupQuery(r.Query); err != nil {
				return nil, fmt.Errorf("%s.query: %w", where, err)
			}
		}
		if r.Severity == "" {
			r.Severity = "warning"
		}
		if !contains(severities, r.Severity) {
			return nil, fmt.Errorf("%s.severity: %q is not one of %s", where, r.Severity, strings.Join(severities, ", "))
		}
		for _, c := range r.Channels {
			if !channels[c] {
				return nil, fmt.Errorf("%s.channels: no channel named %q", where, c)
			}
		}
		// Check the parameters now: a typo must fail at start, not at 3am.
		if _, err := render(q, r.Params, time.Unix(0, 0)); err != nil {
			return nil, fmt.Errorf("%s.params: %w", where, err)
		}
		out = append(out, rule{WatchRule: r, query: q})
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// relTime matches "now", "now-1h", "now+30m", "now-7d".
var relTime = regexp.MustCompile(`^now(?:\s*([+-])\s*(\d+)([smhdw]))?$`)

// defaultNow matches catalogue defaults relative to the server clock:
// now(), now() - INTERVAL 7 DAY, now() + INTERVAL 1 HOUR.
var defaultNow = regexp.MustCompile(`(?i)^now\(\)(?:\s*([+-])\s*INTERVAL\s+(\d+)\s+(SECOND|MINUTE|HOUR|DAY|WEEK))?$`)

var units = map[string]time.Duration{
	"s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour, "w": 7 * 24 * time.Hour,
	"SECOND": time.Second, "MINUTE": time.Minute, "HOUR": time.Hour, "DAY": 24 * time.Hour, "WEEK": 7 * 24 * time.Hour,
}

func offset(now time.Time, sign, n, unit string) time.Time {
	if sign == "" {
		return now
	}
	k, _ := strconv.Atoi(n)
	u, ok := units[unit]
	if !ok {
		u = units[strings.ToUpper(unit)]
	}
	d := time.Duration(k) * u
	if sign == "-" {
		d = -d
	}
	return now.Add(d)
}

// render binds the rule's parameters. Times relative to now (values such
// as "now-1h", and catalogue defaults such as now() - INTERVAL 7 DAY) are
// taken from the watch clock, not the server's, so that a cycle can be
// run as of any time.
func render(q schemas.Query, params map[string]string, now time.Time) (string, error) {
	return renderWith(context.Background(), nil, q, params, now)
}

// renderWith is render with the query's lets computed first by scalar
// (schemas.Query.RenderWith); nil inlines them.
func renderWith(ctx context.Context, scalar schemas.Scalar, q schemas.Query, params map[string]string, now time.Time) (string, error) {
	values := map[string]string{}
	for k, v := range params {
		values[k] = v
	}
	for _, p := range q.Params {
		if p.Type != "DateTime" {
			continue
		}
		v, given := values[p.Name]
		if !given {
			if m := defaultNow.FindStringSubmatch(strings.TrimSpace(p.Default)); m != nil {
				values[p.Name] = offset(now, m[1], m[2], m[3]).UTC().Format(time.DateTime)
			}
			continue
		}
		if m := relTime.FindStringSubmatch(strings.TrimSpace(v)); m != nil {
			values[p.Name] = offset(now, m[1], m[2], m[3]).UTC().Format(time.DateTime)
		}
	}
	return q.RenderWith(ctx, scalar, values)
}
