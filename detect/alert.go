package detect

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/logpipe/logpipe/chclient"
	"github.com/logpipe/logpipe/watch"
)

// Rule is the alert rule name the detector's alerts carry. It is the
// catalogue query that finds the same leaks on a schedule (logpipe
// watch), with the same key (host | path_template): whichever sees a
// leak first sends the alert, the other finds it open and stays quiet.
const Rule = "session_mixing"

// Silence mutes the alerts of a template, a class or a host until a time.
// Empty fields match everything; at least one must be set.
type Silence struct {
	Host     string
	Template string
	Class    string
	Until    time.Time
	Reason   string
}

// AlertOptions configure an Alerter.
type AlertOptions struct {
	// MinSessions is how many sessions must have received someone
	// else's object before a template alerts; default 1.
	MinSessions int
	// UpdateEvery is the shortest time between two notifications of a
	// growing alert; default 1m.
	UpdateEvery time.Duration
	// Renotify: an alert open and notified less than this long ago (by
	// watch or an earlier run) is not sent again; default 4h.
	Renotify time.Duration
	Silences []Silence
	// SendWarnings: warnings (evidence "body" only) are sent; false when
	// watch.min_severity is critical. They are stored either way.
	SendWarnings bool
	// Channels are the notifiers, sent to in the order of Names.
	Channels map[string]watch.Notifier
	Names    []string
}

// Alerter turns findings into one alert per host + path template, kept
// in the alerts table, and stores every finding in leak_findings.
type Alerter struct {
	conn *chclient.Conn // nil: nothing stored (tests of the grouping)
	opts AlertOptions
	log  *slog.Logger
	// Now is the clock.
	Now    func() time.Time
	groups map[string]*group
	rows   []row
	// Sent counts notifications delivered; Failed those that failed.
	Sent, Failed int
}

type row struct {
	f        Finding
	severity string
	silenced bool
}

// group is one alert: the leaks of one host + path template.
type group struct {
	key      string
	host     string
	template string
	class    string
	objects  map[string]bool
	sessions map[uint64]bool
	owners   map[uint64]bool
	resp     int
	coll     int
	signals  string
	body     bool
	first    time.Time
	last     time.Time
	severity string

	alert    watch.Alert
	notified bool // an alert for this episode was delivered (here or by watch)
	sentSize int  // sessions + objects when last delivered
	pending  bool // grew since last delivery
}

const maxTracked = 100_000 // distinct objects/sessions counted per group

// NewAlerter returns an Alerter storing through conn (nil = store nothing).
func NewAlerter(conn *chclient.Conn, o AlertOptions, log *slog.Logger) *Alerter {
	if o.MinSessions <= 0 {
		o.MinSessions = 1
	}
	if o.UpdateEvery <= 0 {
		o.UpdateEvery = time.Minute
	}
	if o.Renotify <= 0 {
		o.Renotify = 4 * time.Hour
	}
	return &Alerter{conn: conn, opts: o, log: log, Now: time.Now, groups: map[string]*group{}}
}

// Run handles findings until ctx is done, storing them at least every
// second and retrying failed notifications.
func (a *Alerter) Run(ctx context.Context, findings <-chan Finding) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			// Store what is buffered, with a short deadline of its own.
			c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			a.flush(c)
			cancel()
			return
		case f := <-findings:
			a.Handle(ctx, f)
			// Take what else is queued before notifying once.
			for more := true; more; {
				select {
				case f := <-findings:
					a.Handle(ctx, f)
				default:
					more = false
				}
			}
			a.Notify(ctx)
		case <-tick.C:
			a.Notify(ctx)
			a.flush(ctx)
		}
	}
}

func (a *Alerter) silenced(f Finding, now time.Time) bool {
	for _, s := range a.opts.Silences {
		if now.Before(s.Until) && (s.Host == "" || s.Host == f.Host) &&
			(s.Template == "" || s.Template == f.Template) && (s.Class == "" || s.Class == f.Class) {
			return true
		}
	}
	return false
}

// Handle adds one finding to its group (notifications wait for Notify).
func (a *Alerter) Handle(ctx context.Context, f Finding) {
	now := a.Now()
	key := f.Host + " | " + f.Template
	g := a.groups[key]
	if g == nil {
		g = &group{key: key, host: f.Host, template: f.Template, class: f.Class, objects: map[string]bool{},
			sessions: map[uint64]bool{}, owners: map[uint64]bool{}, first: f.Time}
		a.groups[key] = g
	}
	if len(g.objects) < maxTracked {
		g.objects[f.Path+"?"+f.Query] = true
	}
	if len(g.sessions) < maxTracked {
		g.sessions[f.Session] = true
	}
	if len(g.owners) < maxTracked {
		g.owners[f.Owner] = true
	}
	g.resp++
	if f.Collapsed {
		g.coll++
	}
	if f.Time.Before(g.first) {
		g.first = f.Time
	}
	if f.Time.After(g.last) {
		g.last = f.Time
	}
	g.signals = mergeList(g.signals, f.Signals.String())
	g.body = g.body || f.Body
	// Personal by configuration or by the response's own headers: a
	// page. Only by the origin's answers (a public page that changes per
	// request looks the same): a warning.
	g.severity = "warning"
	if g.signals != "" {
		g.severity = "critical"
	}
	silenced := a.silenced(f, now)
	a.rows = append(a.rows, row{f: f, severity: g.severity, silenced: silenced})
	if !silenced {
		g.pending = true
	}
}

// Notify sends what is due: a group reaching MinSessions fires once; a
// group that grew is sent again at most every UpdateEvery.
func (a *Alerter) Notify(ctx context.Context) {
	now := a.Now().UTC().Truncate(time.Second)
	keys := make([]string, 0, len(a.groups))
	for k, g := range a.groups {
		if g.pending {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		g := a.groups[k]
		if len(g.sessions) < a.opts.MinSessions || g.severity == "warning" && !a.opts.SendWarnings {
			continue
		}
		update := g.notified
		if update && now.Sub(g.alert.NotifiedAt) < a.opts.UpdateEvery {
			continue
		}
		if !g.notified && g.alert.Version == 0 && a.conn != nil {
			// First time this process sees the template: watch (or an
			// earlier run) may have sent it already.
			prev, ok, err := watch.LoadAlert(ctx, a.conn, Rule, g.key)
			if err != nil {
				a.log.Warn("leak alert: reading alert state failed, sending anyway", "key", g.key, "err", err)
			}
			if ok {
				g.alert = prev
				if prev.Open() && !prev.NotifiedAt.IsZero() && prev.NotifiedAt.Unix() > 0 && now.Sub(prev.NotifiedAt) < a.opts.Renotify {
					g.notified, update = true, true
					if now.Sub(prev.NotifiedAt) < a.opts.UpdateEvery {
						continue
					}
				}
			}
		}
		if g.notified && g.size() <= g.sentSize {
			g.pending = false
			continue
		}
		if !g.alert.Open() || g.alert.Version == 0 {
			g.alert = watch.Alert{Rule: Rule, Key: g.key, OpenedAt: now, ResolvedAt: time.Unix(0, 0).UTC(),
				NotifiedAt: time.Unix(0, 0).UTC(), Version: g.alert.Version}
		}
		g.alert.Severity, g.alert.Summary, g.alert.Evidence, g.alert.LastSeen = g.severity, g.summary(), a.evidence(g), now
		ev := watch.Event{Status: "firing", Update: update, Rule: Rule, Key: g.key, Severity: g.severity,
			Summary: g.alert.Summary, Question: Question, OpenedAt: g.alert.OpenedAt, Evidence: g.alert.Evidence}
		if !a.send(ctx, ev) {
			continue // pending stays: retried next tick
		}
		g.notified, g.pending, g.sentSize = true, false, g.size()
		g.alert.NotifiedAt = now
		g.alert.Version++
		if a.conn != nil {
			if err := watch.SaveAlerts(ctx, a.conn, []watch.Alert{g.alert}); err != nil {
				a.log.Warn("leak alert: saving alert state failed", "key", g.key, "err", err)
			}
		}
	}
}

// Question is what the detector's alerts answer.
const Question = "Which host + path template served a personal object, generated for one session, to another session from cache or by request collapsing (a leak)?"

func (g *group) size() int { return len(g.sessions) + len(g.objects) }

func (g *group) evidenceList() string {
	if g.body {
		return mergeList(g.signals, "body")
	}
	return g.signals
}

func (g *group) summary() string {
	return fmt.Sprintf("%s: %s (objects=%d, sessions=%d, owners=%d, responses=%d, collapsed=%d, evidence=%s, first_seen=%s, last_seen=%s)",
		Rule, g.key, len(g.objects), len(g.sessions), len(g.owners), g.resp, g.coll, g.evidenceList(),
		g.first.UTC().Format(time.DateTime), g.last.UTC().Format(time.DateTime))
}

func (a *Alerter) evidence(g *group) watch.Evidence {
	db := "logpipe"
	if a.conn != nil {
		db = a.conn.Database()
	}
	q := chclient.String
	return watch.Evidence{
		Columns: []string{"host", "path_template", "path_class", "objects", "sessions", "owners", "responses", "collapsed_responses", "evidence", "severity", "first_seen", "last_seen"},
		Values: []string{g.host, g.template, g.class, strconv.Itoa(len(g.objects)), strconv.Itoa(len(g.sessions)), strconv.Itoa(len(g.owners)),
			strconv.Itoa(g.resp), strconv.Itoa(g.coll), g.evidenceList(), g.severity,
			g.first.UTC().Format(time.DateTime), g.last.UTC().Format(time.DateTime)},
		SQL: fmt.Sprintf("SELECT time, path, query, cache_status, collapsed, session_hash, owner_hash, evidence\nFROM %s.leak_findings\nWHERE host = %s AND path_template = %s AND time >= toDateTime(%s, 'UTC')\nORDER BY time",
			chclient.Ident(db), q(g.host), q(g.template), q(g.first.UTC().Format(time.DateTime))),
	}
}

func (a *Alerter) send(ctx context.Context, e watch.Event) bool {
	ok := true
	for _, n := range a.opts.Names {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := a.opts.Channels[n].Notify(ctx, e)
		cancel()
		if err != nil {
			ok = false
			a.Failed++
			a.log.Warn("leak alert: notification failed, will retry", "channel", n, "key", e.Key, "err", err)
			continue
		}
		a.Sent++
	}
	if ok {
		a.log.Warn("leak alert sent", "key", e.Key, "severity", e.Severity, "summary", e.Summary)
	}
	return ok
}

// flush stores the buffered findings in leak_findings.
func (a *Alerter) flush(ctx context.Context) {
	if len(a.rows) == 0 || a.conn == nil {
		a.rows = a.rows[:0]
		return
	}
	if err := a.insert(ctx); err != nil {
		if len(a.rows) > 100_000 {
			a.log.Error("leak findings: dropping rows that could not be stored", "rows", len(a.rows), "err", err)
			a.rows = a.rows[:0]
			return
		}
		a.log.Warn("leak findings: insert failed, will retry", "rows", len(a.rows), "err", err)
		return
	}
	a.rows = a.rows[:0]
}

func (a *Alerter) insert(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	b, err := a.conn.PrepareBatch(ctx, "INSERT INTO leak_findings (time, time_ms, host, path, query, path_template, path_class, session_hash, owner_hash, collapsed, cache_status, evidence, severity, silenced, detected_at, _topic, _partition, _offset)")
	if err != nil {
		return err
	}
	defer b.Abort()
	u8 := func(v bool) uint8 {
		if v {
			return 1
		}
		return 0
	}
	for _, r := range a.rows {
		f := r.f
		if err := b.Append(f.Time.UTC().Truncate(time.Second), uint64(f.Time.UnixMilli()), f.Host, f.Path, f.Query, f.Template, f.Class,
			f.Session, f.Owner, u8(f.Collapsed), f.CacheStatus, f.Evidence(), r.severity, u8(r.silenced),
			f.DetectedAt.UTC().Truncate(time.Second), f.Meta.Topic, f.Meta.Partition, f.Meta.Offset); err != nil {
			return fmt.Errorf("leak finding %s/%d@%d: %w", f.Meta.Topic, f.Meta.Partition, f.Meta.Offset, err)
		}
	}
	return b.Send()
}

// mergeList merges two comma-separated lists, keeping the order of the
// signal names.
func mergeList(a, b string) string {
	if b == "" {
		return a
	}
	if a == "" {
		return b
	}
	have := map[string]bool{}
	for _, s := range strings.Split(a+","+b, ",") {
		have[s] = true
	}
	var out []string
	for _, n := range []string{"class", "private", "set_cookie", "vary", "authorization", "body"} {
		if have[n] {
			out = append(out, n)
		}
	}
	return strings.Join(out, ",")
}
