package watch

import (
	"cmp"
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/logpipe/logpipe/chclient"
	"github.com/logpipe/logpipe/config"
	"github.com/logpipe/logpipe/schemas"
	"github.com/logpipe/logpipe/transform/redact"
)

// Watcher runs the rules and keeps the alerts.
type Watcher struct {
	conn     *chclient.Conn
	rules    []rule
	channels map[string]Notifier
	names    []string // channel names in config order
	silences []config.WatchSilence
	renotify time.Duration
	interval time.Duration
	minSev   int
	log      *slog.Logger
	server   serverVersion
	// Now is the clock; tests move it.
	Now func() time.Time
	// QueryTimeout bounds one rule's query; default 60s.
	QueryTimeout time.Duration
	// Hooks are told of each cycle Run runs (for metrics): each value
	// that implements CycleHook is called, in order. Set them before Run.
	Hooks []any
	// Redact redacts every value of a result row before it becomes an
	// alert's key, summary, evidence or notification. New sets one with a
	// random key; set it to the configured one so hashes match the tables.
	Redact *redact.Redactor
}

// New checks cfg (rules name catalogue queries with valid parameters,
// channels exist) and returns a Watcher reading through conn. client may
// be nil.
func New(conn *chclient.Conn, cfg config.Watch, client *http.Client, log *slog.Logger) (*Watcher, error) {
	notifiers, err := NewNotifiers(cfg.Channels, client)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, c := range cfg.Channels {
		names = append(names, c.Name)
	}
	rules, err := compileConfig(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.MinSeverity == "" {
		cfg.MinSeverity = "warning"
	}
	w := &Watcher{
		conn: conn, rules: rules, channels: notifiers, names: names, silences: cfg.Silence,
		renotify: cfg.Renotify, interval: cfg.Interval, log: log, minSev: rank(cfg.MinSeverity),
		Now: time.Now, QueryTimeout: 60 * time.Second,
	}
	key := make([]byte, 32)
	rand.Read(key)
	if w.Redact, err = redact.New(redact.Config{Key: key}); err != nil {
		return nil, err
	}
	if w.renotify <= 0 {
		w.renotify = 4 * time.Hour
	}
	if w.interval <= 0 {
		w.interval = time.Minute
	}
	return w, nil
}

// compileConfig checks and compiles the rules (the configured ones or
// the defaults, and those of rules_dir), silences and min_severity of cfg,
// against the names of its channels.
func compileConfig(cfg config.Watch) ([]rule, error) {
	known := map[string]bool{}
	for _, c := range cfg.Channels {
		known[c.Name] = true
	}
	userRules, userQueries, err := UserRules(cfg.RulesDir)
	if err != nil {
		return nil, err
	}
	rs := cfg.Rules
	if len(rs) == 0 {
		rs = DefaultRules()
	}
	for _, u := range userRules {
		listed := false
		for _, r := range rs {
			listed = listed || r.Name == u.Name
		}
		if !listed {
			rs = append(rs[:len(rs):len(rs)], u)
		}
	}
	rules, err := compileRulesWith(rs, userQueries, known)
	if err != nil {
		return nil, withQueryHint(err, rs)
	}
	for i, s := range cfg.Silence {
		if s.Rule == "" && s.Key == "" && s.Template == "" && s.Class == "" && s.Host == "" {
			return nil, fmt.Errorf("watch.silence[%d]: name a rule, key, template, class or host", i)
		}
		if s.Rule == "" {
			continue
		}
		found := false
		for _, r := range rules {
			found = found || r.Name == s.Rule
		}
		if !found {
			return nil, fmt.Errorf("watch.silence[%d].rule: no rule named %q", i, s.Rule)
		}
	}
	if cfg.MinSeverity != "" && rank(cfg.MinSeverity) < 0 {
		return nil, fmt.Errorf("watch.min_severity: %q is not one of %s", cfg.MinSeverity, strings.Join(severities, ", "))
	}
	return rules, nil
}

// CycleHook is a Watcher hook called after each cycle Run runs, with
// what it did, how long it took and, if it failed as a whole, why.
type CycleHook interface {
	OnCycle(r Report, d time.Duration, err error)
}

// Check reports every problem of cfg New would refuse, each naming its
// field (watch.channels[0].type: ...), without connecting: each channel,
// then the rules, silences and min_severity. Without readFiles the
// channels' url_file is not read (a process that sends no alert need not
// have it).
func Check(cfg config.Watch, readFiles bool) []error {
	var errs []error
	defined := map[string]Notifier{}
	for i, c := range cfg.Channels {
		n, err := newNotifier(i, c, defined, nil, readFiles)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		defined[c.Name] = n
	}
	if _, err := compileConfig(cfg); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// withQueryHint adds the closest catalogue name to an unknown-query
// error of a rule (a misspelt rule name).
func withQueryHint(err error, rules []config.WatchRule) error {
	if !strings.Contains(err.Error(), "no query") {
		return err
	}
	qs, qerr := schemas.Queries()
	if qerr != nil {
		return err
	}
	for _, r := range rules {
		name := cmp.Or(r.Query, r.Name)
		if _, lerr := schemas.LookupQuery(name); lerr == nil || !strings.Contains(err.Error(), strconv.Quote(name)) {
			continue
		}
		best, bestD := "", len(name)/2+2
		for _, q := range qs {
			if d := config.EditDistance(name, q.Name); d < bestD {
				best, bestD = q.Name, d
			}
		}
		if best != "" {
			return fmt.Errorf("%w (did you mean %s?)", err, best)
		}
	}
	return err
}

// Interval is how often Run runs a cycle (the configured one, or the
// default).
func (w *Watcher) Interval() time.Duration { return w.interval }

// Rules lists the rule names, in order.
func (w *Watcher) Rules() []string {
	var out []string
	for _, r := range w.rules {
		out = append(out, r.Name)
	}
	return out
}

// Run runs a cycle every interval until ctx is done. A failed cycle is
// logged and the next one runs on time.
func (w *Watcher) Run(ctx context.Context) error {
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		began := time.Now()
		r, err := w.Cycle(ctx)
		d := time.Since(began)
		for _, h := range w.Hooks {
			if h, ok := h.(CycleHook); ok {
				h.OnCycle(r, d, err)
			}
		}
		if err != nil {
			w.log.Error("watch cycle failed", "err", err)
		} else {
			w.log.Info("watch cycle", "open", r.Open, "opened", r.Opened, "resolved", r.Resolved, "sent", r.Sent, "failed_rules", len(r.RuleErrors))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Report says what one cycle did.
type Report struct {
	Open       int            // alerts open after the cycle
	OpenByRule map[string]int // the same, per configured rule
	Opened     int            // alerts opened by the cycle
	Resolved   int            // alerts resolved by the cycle
	Sent       int            // notifications delivered
	Failed     int            // notifications that failed (retried next cycle)
	RuleErrors map[string]error
}

// Cycle runs every rule once, as of w.Now(), notifies and saves the new
// alert state. A rule whose query fails keeps its alerts as they are (a
// broken query must not resolve them).
func (w *Watcher) Cycle(ctx context.Context) (Report, error) {
	now := w.Now().UTC().Truncate(time.Second)
	rep := Report{RuleErrors: map[string]error{}, OpenByRule: map[string]int{}}
	state, err := loadAlerts(ctx, w.conn)
	if err != nil {
		return rep, err
	}
	var changed []Alert
	for _, r := range w.rules {
		found, err := w.evaluate(ctx, r, now)
		if err != nil {
			rep.RuleErrors[r.Name] = err
			w.log.Error("watch rule failed", "rule", r.Name, "err", err)
			continue
		}
		seen := map[string]bool{}
		for _, f := range found {
			if seen[f.key] {
				continue
			}
			seen[f.key] = true
			id := alertID{r.Name, f.key}
			a, exists := state[id]
			if !exists || !a.Open() {
				a = Alert{Rule: r.Name, Key: f.key, OpenedAt: now, ResolvedAt: epoch, NotifiedAt: epoch, Version: a.Version}
				rep.Opened++
			}
			a.Severity, a.Summary, a.Evidence, a.LastSeen = f.severity, f.summary, f.evidence, now
			a.Version++
			if unset(a.NotifiedAt) && w.grouped(state, id, a.Severity) {
				// Another rule's alert about the same thing (same key,
				// e.g. host | path_template) is open, told and at least
				// as severe: one incident, one page.
				a.NotifiedAt = now
			}
			if (unset(a.NotifiedAt) || now.Sub(a.NotifiedAt) >= w.renotify) && rank(a.Severity) >= w.minSev && !w.silenced(r.Name, f.key, f.evidence, now) {
				ev := w.event(r, a, "firing")
				ev.Reminder = !unset(a.NotifiedAt)
				if w.notify(ctx, r, ev, &rep) {
					a.NotifiedAt = now
				}
			}
			state[id] = a
			changed = append(changed, a)
		}
		for id, a := range state {
			if id.rule != r.Name || !a.Open() || seen[id.key] {
				continue
			}
			// Gone: tell whoever was told it opened - unless the rule's
			// key changed shape (an upgrade regrouped its alerts, e.g.
			// session_mixing from host | path | query to host |
			// path_template): those close quietly, no storm of resolves.
			reshaped := len(r.Key) > 0 && strings.Count(a.Key, " | ") != len(r.Key)-1
			if !unset(a.NotifiedAt) && !reshaped && !w.silenced(r.Name, a.Key, a.Evidence, now) {
				a.ResolvedAt = now
				if !w.notify(ctx, r, w.event(r, a, "resolved"), &rep) {
					continue // stays open; the resolve is sent next cycle
				}
			}
			a.ResolvedAt = now
			a.Version++
			state[id] = a
			changed = append(changed, a)
			rep.Resolved++
		}
	}
	configured := map[string]bool{}
	for _, r := range w.rules {
		configured[r.Name] = true
		rep.OpenByRule[r.Name] = 0
	}
	for id, a := range state {
		if a.Open() && !configured[a.Rule] {
			// Its rule was removed from the config: close it quietly
			// rather than keep it open forever.
			w.log.Info("closing alert of a rule no longer configured", "rule", a.Rule, "key", a.Key)
			a.ResolvedAt = now
			a.Version++
			state[id] = a
			changed = append(changed, a)
		}
		if a.Open() {
			rep.Open++
			rep.OpenByRule[a.Rule]++
		}
	}
	if err := saveAlerts(ctx, w.conn, changed); err != nil {
		return rep, err
	}
	return rep, nil
}

// silenced reports whether a silence matches: by rule, key, and the
// template, class or host of the alert (its key parts or its evidence
// columns path_template, path_class, host).
func (w *Watcher) silenced(rule, key string, ev Evidence, now time.Time) bool {
	parts := strings.Split(key, " | ")
	column := func(name string) string {
		for i, c := range ev.Columns {
			if c == name && i < len(ev.Values) {
				return ev.Values[i]
			}
		}
		return ""
	}
	about := func(want, col string) bool {
		return want == "" || column(col) == want || column(col) == "" && contains(parts, want)
	}
	for _, s := range w.silences {
		if (s.Rule == "" || s.Rule == rule) && (s.Key == "" || s.Key == key) && now.Before(s.Until) &&
			about(s.Template, "path_template") && about(s.Host, "host") && (s.Class == "" || column("path_class") == s.Class) {
			return true
		}
	}
	return false
}

// grouped reports whether another rule's alert with the same key is open,
// notified and at least as severe as sev.
func (w *Watcher) grouped(state map[alertID]Alert, id alertID, sev string) bool {
	for other, a := range state {
		if other.key == id.key && other.rule != id.rule && a.Open() && !unset(a.NotifiedAt) && rank(a.Severity) >= rank(sev) {
			return true
		}
	}
	return false
}

func rank(sev string) int {
	for i, s := range severities {
		if s == sev {
			return i
		}
	}
	return -1
}

func (w *Watcher) event(r rule, a Alert, status string) Event {
	e := Event{Status: status, Rule: a.Rule, Key: a.Key, Severity: a.Severity, Summary: a.Summary,
		Question: r.query.Question, OpenedAt: a.OpenedAt, Evidence: a.Evidence}
	if status == "resolved" {
		e.ResolvedAt = a.ResolvedAt
	}
	return e
}

// notify sends e to the rule's channels; true when every one took it.
func (w *Watcher) notify(ctx context.Context, r rule, e Event, rep *Report) bool {
	names := r.Channels
	if len(names) == 0 {
		names = w.names
	}
	ok := true
	for _, n := range names {
		if err := w.channels[n].Notify(ctx, e); err != nil {
			ok = false
			rep.Failed++
			w.log.Warn("notification failed, will retry next cycle", "channel", n, "rule", e.Rule, "key", e.Key, "status", e.Status, "err", err)
			continue
		}
		rep.Sent++
	}
	return ok
}

// finding is one result row of a rule.
type finding struct {
	key      string
	severity string
	summary  string
	evidence Evidence
}

// evaluate runs r's query as of now.
func (w *Watcher) evaluate(ctx context.Context, r rule, now time.Time) ([]finding, error) {
	ctx, cancel := context.WithTimeout(ctx, w.QueryTimeout)
	defer cancel()
	sql, err := renderWith(ctx, w.conn.Scalar, r.query.For(w.server.get(ctx, w.conn, w.log)), r.Params, now)
	if err != nil {
		return nil, err
	}
	rows, err := w.conn.Rows(ctx, sql)
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", r.query.Name, err)
	}
	defer rows.Close()
	cols := rows.Columns()
	types := rows.DatabaseTypes()
	keyIdx, err := keyColumns(r.Key, cols)
	if err != nil {
		return nil, fmt.Errorf("rule %s: %w", r.Name, err)
	}
	var out []finding
	for rows.Next() {
		vals, err := rows.ScanText()
		if err != nil {
			return nil, fmt.Errorf("query %s: %w", r.query.Name, err)
		}
		for i := range vals {
			// Stored values are redacted already (redaction is idempotent,
			// so the evidence SQL still selects the row); a query can still
			// build text from older rows or other tables.
			vals[i] = w.Redact.String(vals[i])
		}
		var keyParts, conds, rest []string
		for _, i := range keyIdx {
			keyParts = append(keyParts, vals[i])
			conds = append(conds, match(cols[i], types[i], vals[i]))
		}
		for i, c := range cols {
			if !containsInt(keyIdx, i) && len(rest) < 6 {
				rest = append(rest, c+"="+vals[i])
			}
		}
		severity := r.Severity
		for i, c := range cols {
			// A query may grade its own rows (severity from evidence).
			if c == "severity" && contains(severities, vals[i]) {
				severity = vals[i]
			}
		}
		key := strings.Join(keyParts, " | ")
		summary := r.Name + ": " + key
		if len(rest) > 0 {
			summary += " (" + strings.Join(rest, ", ") + ")"
		}
		out = append(out, finding{
			key:      key,
			severity: severity,
			summary:  summary,
			evidence: Evidence{
				Columns: cols, Values: vals,
				SQL: "SELECT *\nFROM\n(\n" + Qualify(sql, w.conn.Database()) + "\n)\nWHERE " + strings.Join(conds, "\n  AND "),
			},
		})
	}
	return out, rows.Err()
}

// keyColumns returns the positions of the key columns; default: the
// first two columns (one if there is only one).
func keyColumns(key []string, cols []string) ([]int, error) {
	if len(key) == 0 {
		n := min(2, len(cols))
		out := make([]int, n)
		for i := range out {
			out[i] = i
		}
		return out, nil
	}
	var out []int
	for _, k := range key {
		i := -1
		for j, c := range cols {
			if c == k {
				i = j
			}
		}
		if i < 0 {
			return nil, fmt.Errorf("key column %q is not in the result (columns: %s)", k, strings.Join(cols, ", "))
		}
		out = append(out, i)
	}
	return out, nil
}

func containsInt(xs []int, x int) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// match renders "column equals value" for the evidence SQL. Strings are
// compared through CAST(... AS String) (toString fails on LowCardinality
// columns on 18.16); times as UTC literals.
func match(col, typ, val string) string {
	id := chclient.QuotedIdent(col)
	base := strings.TrimSuffix(strings.TrimPrefix(typ, "Nullable("), ")")
	switch {
	case strings.HasPrefix(base, "DateTime"):
		return fmt.Sprintf("%s = toDateTime(%s, 'UTC')", id, chclient.String(val))
	case base == "Date":
		return fmt.Sprintf("%s = toDate(%s)", id, chclient.String(val))
	}
	return fmt.Sprintf("CAST(%s AS String) = %s", id, chclient.String(val))
}

// tableRef matches a table name after FROM or JOIN that has no database:
// not a subquery, a table function or an already qualified name.
var tableRef = regexp.MustCompile("(?i)\\b(FROM|JOIN)(\\s+)([A-Za-z_][A-Za-z0-9_]*)\\b([^.(A-Za-z0-9_]|$)")

// Qualify prefixes the tables a query reads with db, so that the SQL can
// be pasted into clickhouse-client without -d.
func Qualify(sql, db string) string {
	if db == "" {
		return sql
	}
	q := chclient.Ident(db) + "."
	return tableRef.ReplaceAllString(sql, "${1}${2}"+strings.ReplaceAll(q, "$", "$$")+"${3}${4}")
}
