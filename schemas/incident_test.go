package schemas_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/logpipe/logpipe/chclient"
	"github.com/logpipe/logpipe/internal/chdbtest"
	"github.com/logpipe/logpipe/internal/chserver"
	"github.com/logpipe/logpipe/schemas"
	"github.com/logpipe/logpipe/sink"
	"github.com/logpipe/logpipe/tables"
	"github.com/logpipe/logpipe/transform"
)

// The incident generator: a cache simulated request by request, which
// knows which origin fetch produced every response it serves. The truth
// below is computed from the simulation alone; the incident_* queries
// see only the log lines it writes and must reconstruct the same answer.

// shape describes one simulated incident.
type shape struct {
	name       string
	seed       int64
	vendor     string        // fastly marks collapsed responses; the others log them as hits
	users      int           // sessions; some requests have none (anonymous)
	anonymous  float64       // share of requests without a session
	requests   int           // requests inside [start, end)
	start      time.Duration // first request, relative to the window's since
	end        time.Duration // last request, relative to since
	urls       []simURL
	originMin  int // origin time, ms
	originMax  int
	noCollapse float64  // share of requests that start their own fetch while one is in flight (overlapping fetches)
	burst      float64  // share of requests followed by a repeat of the same session within 50 ms
	pops       []string // POPs the requests are spread over, each with its own cache; nil: NRT, KIX, HND
}

type simURL struct {
	path, query, template, class string
	ttl                          time.Duration // 0: the incident's TTL of 0 s
	varyCookie                   bool          // Vary: Cookie - one copy per session
	weight                       int
}

// The window every shape is asked about, and the lookback used.
var (
	incSince    = time.Date(2026, 11, 25, 9, 41, 0, 0, time.UTC)
	incUntil    = incSince.Add(5 * time.Hour)
	incLookback = time.Hour
)

// simRow is one logged request with what the simulation knows about it.
type simRow struct {
	t        time.Time
	host     string
	url      simURL
	session  uint64
	pop      string
	state    string // fetch, hit, collapsed
	originMs int
	producer *simFetch // nil for a fetch (it produced itself)
	// otherPOP: a collapsed response for which a cache shared by all POPs
	// would name another owner (another POP's fetch of the URL, started
	// later and with another session, was in flight too).
	otherPOP bool
}

type simFetch struct {
	start, end int64 // ms
	session    uint64
}

// simulate runs the cache and returns the requests in time order.
func simulate(s shape) []simRow {
	rnd := rand.New(rand.NewSource(s.seed))
	host := "www.example.jp"
	if s.vendor != "fastly" {
		host = s.vendor + ".example.jp"
	}
	total := 0
	for _, u := range s.urls {
		total += u.weight
	}
	pick := func() simURL {
		n := rnd.Intn(total)
		for _, u := range s.urls {
			if n < u.weight {
				return u
			}
			n -= u.weight
		}
		return s.urls[0]
	}
	type req struct {
		ms      int64
		url     simURL
		session uint64
		force   bool
	}
	var reqs []req
	span := int64((s.end - s.start) / time.Millisecond)
	base := incSince.Add(s.start).UnixMilli()
	for i := 0; i < s.requests; i++ {
		r := req{ms: base + rnd.Int63n(span), url: pick(), force: rnd.Float64() < s.noCollapse}
		if rnd.Float64() >= s.anonymous {
			r.session = uint64(1000 + rnd.Intn(s.users)) // never 0
		}
		reqs = append(reqs, r)
		if rnd.Float64() < s.burst { // a double click: same session, same URL, soon after
			reqs = append(reqs, req{ms: r.ms + 1 + rnd.Int63n(50), url: r.url, session: r.session})
		}
	}
	sort.SliceStable(reqs, func(i, j int) bool { return reqs[i].ms < reqs[j].ms })
	// Two requests for one object in the same millisecond cannot be ordered
	// from the log (docs/analysts.md): keep them a millisecond apart.
	taken := map[string]bool{}
	for i := range reqs {
		for taken[fmt.Sprint(reqs[i].url.path, reqs[i].ms)] {
			reqs[i].ms++
		}
		taken[fmt.Sprint(reqs[i].url.path, reqs[i].ms)] = true
	}
	sort.SliceStable(reqs, func(i, j int) bool { return reqs[i].ms < reqs[j].ms })

	// One cache per POP: per POP and key the fetches so far.
	type key struct {
		pop         string
		path, query string
		session     uint64
	}
	fetches := map[key][]*simFetch{}
	pops := s.pops
	if pops == nil {
		pops = []string{"NRT", "KIX", "HND"}
	}
	// The fetch waiting requests join: the latest started one still running.
	inFlight := func(fs []*simFetch, ms int64) *simFetch {
		var flight *simFetch
		for _, f := range fs {
			if f.start <= ms && ms <= f.end && (flight == nil || f.start > flight.start || (f.start == flight.start && (f.end > flight.end || (f.end == flight.end && f.session > flight.session)))) {
				flight = f
			}
		}
		return flight
	}
	var rows []simRow
	for _, r := range reqs {
		row := simRow{t: time.UnixMilli(r.ms).UTC(), host: host, url: r.url, session: r.session, pop: pops[rnd.Intn(len(pops))]}
		k := key{pop: row.pop, path: r.url.path, query: r.url.query}
		if r.url.varyCookie {
			k.session = r.session
		}
		// The cached copy: the latest fetch completed by now (latest end, then start).
		var done *simFetch
		for _, f := range fetches[k] {
			if f.end <= r.ms && (done == nil || f.end > done.end || (f.end == done.end && (f.start > done.start || (f.start == done.start && f.session > done.session)))) {
				done = f
			}
		}
		flight := inFlight(fetches[k], r.ms)
		switch {
		case done != nil && r.ms < done.end+int64(r.url.ttl/time.Millisecond):
			row.state, row.producer = "hit", done
		case flight != nil && !r.force:
			row.state, row.producer = "collapsed", flight
			var all []*simFetch
			for _, p := range pops {
				o := k
				o.pop = p
				all = append(all, fetches[o]...)
			}
			if f := inFlight(all, r.ms); f != flight && f.session != flight.session {
				row.otherPOP = true
			}
		default:
			row.state = "fetch"
			row.originMs = s.originMin + rnd.Intn(s.originMax-s.originMin+1)
			fetches[k] = append(fetches[k], &simFetch{start: r.ms, end: r.ms + int64(row.originMs), session: r.session})
		}
		rows = append(rows, row)
	}
	return rows
}

// insertSim writes the simulated requests as the vendor would log them.
func insertSim(t *testing.T, conn *chclient.Conn, s shape, rows []simRow) {
	t.Helper()
	w := sink.NewWriter(conn, slog.New(slog.NewTextHandler(io.Discard, nil)))
	b := tables.NewCDNRequests()
	flush := func() {
		if b.Len() == 0 {
			return
		}
		if err := w.Insert(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		b = tables.NewCDNRequests()
	}
	for i, r := range rows {
		cr := transform.CDNRequest{
			Time: r.t, Vendor: s.vendor, Host: r.host, Method: "GET", Path: r.url.path, Query: r.url.query,
			PathTemplate: r.url.template, PathClass: r.url.class, Status: 200, POP: r.pop,
			SessionHash: r.session, HasSessionCookie: r.session != 0, BytesSent: 1000, DurationMs: 5,
		}
		if r.url.varyCookie {
			cr.Vary = "Accept-Encoding, Cookie"
		}
		switch r.state {
		case "fetch":
			cr.CacheStatus, cr.CacheRaw, cr.OriginMs, cr.OriginStatus = transform.CacheMiss, "MISS", float64(r.originMs), 200
		case "hit":
			cr.CacheStatus, cr.CacheRaw = transform.CacheHit, "HIT"
		case "collapsed":
			cr.CacheStatus, cr.CacheRaw = transform.CacheHit, "HIT"
			if s.vendor == "fastly" { // only Fastly can say so
				cr.CacheStatus, cr.Collapsed, cr.CacheRaw = transform.CacheMiss, true, "MISS-WAIT"
			}
		}
		cr.FromCache = transform.FromCache(cr.CacheStatus)
		b.Append(&cr, tables.Meta{Topic: "cdn", Offset: int64(i)}, r.t, 100)
		if b.Len() >= 50000 {
			flush()
		}
	}
	flush()
}

// incidentTruth is what the incident report must say, from the simulation.
type incidentTruth struct {
	pairs   []string // as incident_pairs prints them
	owners  []string // as incident_owners prints them
	summary []string // as incident_summary prints them
	leaks   int
	unknown int
	own     int // responses a session got from its own fetch
}

func truth(s shape, rows []simRow) incidentTruth {
	since, until := incSince.UnixMilli(), incUntil.UnixMilli()
	dataFrom := incSince.Add(-incLookback).UnixMilli()
	dt := func(ms int64) string { return time.UnixMilli(ms).UTC().Format("2006-01-02 15:04:05") }
	type pair struct {
		ms             int64
		owner, viewer  uint64
		host, template string
		class, pop     string
		served         string
		fetch          int64
		object         string
	}
	type agg struct {
		owners, viewers, objects map[string]bool
		leaks, anon, unknown     int
		first, last              int64
	}
	newAgg := func() *agg {
		return &agg{owners: map[string]bool{}, viewers: map[string]bool{}, objects: map[string]bool{}}
	}
	var tr incidentTruth
	var pairs []pair
	groups := map[[2]string]*agg{}
	group := func(class, template string) *agg {
		g := groups[[2]string{class, template}]
		if g == nil {
			g = newAgg()
			groups[[2]string{class, template}] = g
		}
		return g
	}
	for _, r := range rows {
		ms := r.t.UnixMilli()
		if r.state == "fetch" || ms < since || ms >= until || (r.url.class != "personal" && r.url.class != "auth") {
			continue
		}
		known := r.producer.start >= dataFrom // its fetch is in the data searched
		gs := func() []*agg {
			return []*agg{group("all", "all"), group(r.url.class, "all"), group(r.url.class, r.url.template)}
		}
		if !known {
			tr.unknown++
			for _, g := range gs() {
				g.unknown++
			}
			continue
		}
		owner := r.producer.session
		if owner == 0 || owner == r.session {
			if owner != 0 {
				tr.own++
			}
			continue
		}
		tr.leaks++
		served := "hit"
		if r.state == "collapsed" && s.vendor == "fastly" {
			served = "collapsed"
		}
		obj := r.host + r.url.path + "?" + r.url.query
		pairs = append(pairs, pair{ms, owner, r.session, r.host, r.url.template, r.url.class, r.pop, served, r.producer.start, obj})
		for _, g := range gs() {
			g.owners[fmt.Sprint(owner)] = true
			if r.session != 0 {
				g.viewers[fmt.Sprint(r.session)] = true
			} else {
				g.anon++
			}
			g.objects[obj] = true
			if g.leaks == 0 || ms < g.first {
				g.first = ms
			}
			if ms > g.last {
				g.last = ms
			}
			g.leaks++
		}
	}
	sort.Slice(pairs, func(i, j int) bool {
		a, b := pairs[i], pairs[j]
		if a.ms != b.ms {
			return a.ms < b.ms
		}
		if a.viewer != b.viewer {
			return a.viewer < b.viewer
		}
		if a.owner != b.owner {
			return a.owner < b.owner
		}
		x := [...]string{a.host, a.template, a.class, a.pop, a.served}
		y := [...]string{b.host, b.template, b.class, b.pop, b.served}
		if x != y {
			return strings.Join(x[:], "\x00") < strings.Join(y[:], "\x00")
		}
		return a.fetch < b.fetch
	})
	type ownerAgg struct {
		viewers, objects map[uint64]bool
		objs             map[string]bool
		anon, leaks      int
		first, last      int64
	}
	owners := map[uint64]*ownerAgg{}
	for _, p := range pairs {
		tr.pairs = append(tr.pairs, strings.Join([]string{dt(p.ms), fmt.Sprint(p.ms), fmt.Sprint(p.owner), fmt.Sprint(p.viewer),
			p.host, p.template, p.class, p.pop, p.served, fmt.Sprint(p.fetch)}, "|"))
		o := owners[p.owner]
		if o == nil {
			o = &ownerAgg{viewers: map[uint64]bool{}, objs: map[string]bool{}, first: p.ms}
			owners[p.owner] = o
		}
		if p.viewer != 0 {
			o.viewers[p.viewer] = true
		} else {
			o.anon++
		}
		o.objs[p.object] = true
		o.leaks++
		o.last = p.ms // pairs are in time order
	}
	var ids []uint64
	for id := range owners {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		a, b := owners[ids[i]], owners[ids[j]]
		if a.first != b.first {
			return a.first < b.first
		}
		return ids[i] < ids[j]
	})
	for _, id := range ids {
		o := owners[id]
		tr.owners = append(tr.owners, fmt.Sprintf("%d|%d|%d|%d|%d|%s|%s", id, len(o.viewers), o.anon, o.leaks, len(o.objs), dt(o.first), dt(o.last)))
	}
	var keys [][2]string
	for k := range groups {
		keys = append(keys, k)
	}
	// Total first, then per class: its subtotal, then its templates.
	rank := func(k [2]string) [4]string {
		c, tm := k[0], k[1]
		cr, tr := "1", "1"
		if c == "all" {
			cr, c = "0", ""
		}
		if tm == "all" {
			tr, tm = "0", ""
		}
		return [4]string{cr, c, tr, tm}
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := rank(keys[i]), rank(keys[j])
		for n := range a {
			if a[n] != b[n] {
				return a[n] < b[n]
			}
		}
		return false
	})
	for _, k := range keys {
		g := groups[k]
		first, last := `\N`, `\N` // no leak: NULL
		if g.leaks > 0 {
			first, last = dt(g.first), dt(g.last)
		}
		tr.summary = append(tr.summary, fmt.Sprintf("%s|%s|%d|%d|%d|%d|%d|%s|%s|%d", k[0], k[1], len(g.owners), len(g.viewers), g.leaks, g.anon,
			len(g.objects), first, last, g.unknown))
	}
	return tr
}

var incidentShapes = []shape{
	{name: "few users many refetches", seed: 1, vendor: "fastly", users: 5, requests: 3000, start: -10 * time.Minute, end: 5 * time.Hour,
		urls:      []simURL{{path: "/mypage", template: "/mypage", class: "personal", weight: 3}, {path: "/mypage/points", template: "/mypage/points", class: "personal", weight: 1}},
		originMin: 20, originMax: 2000, burst: 0.05},
	{name: "many users", seed: 2, vendor: "fastly", users: 20000, anonymous: 0.02, requests: 60000, start: 0, end: 5 * time.Hour,
		urls: []simURL{{path: "/mypage", template: "/mypage", class: "personal", weight: 20}, {path: "/mypage/purchases", template: "/mypage/purchases", class: "personal", weight: 5},
			{path: "/login", template: "/login", class: "auth", weight: 2}, {path: "/items/1", template: "/items/:id", class: "other", ttl: time.Minute, weight: 10}},
		originMin: 50, originMax: 1500, burst: 0.02},
	{name: "overlapping fetches", seed: 3, vendor: "fastly", users: 40, requests: 8000, start: 0, end: time.Hour,
		urls:      []simURL{{path: "/mypage", template: "/mypage", class: "personal", weight: 1}},
		originMin: 10, originMax: 4000, noCollapse: 0.3},
	{name: "hits after a fetch", seed: 4, vendor: "fastly", users: 300, anonymous: 0.1, requests: 10000, start: 0, end: 2 * time.Hour,
		urls: []simURL{{path: "/mypage", template: "/mypage", class: "personal", ttl: 5 * time.Second, weight: 2},
			{path: "/mypage/orders", query: "page=2", template: "/mypage/orders", class: "personal", ttl: 30 * time.Second, weight: 1},
			{path: "/mypage/settings", template: "/mypage/settings", class: "personal", ttl: time.Minute, varyCookie: true, weight: 1}},
		originMin: 30, originMax: 600, noCollapse: 0.05},
	{name: "own page collapsing", seed: 5, vendor: "fastly", users: 3, requests: 2000, start: 0, end: time.Hour,
		urls:      []simURL{{path: "/mypage", template: "/mypage", class: "personal", weight: 1}},
		originMin: 100, originMax: 900, burst: 0.5},
	{name: "fetches outside the window", seed: 6, vendor: "fastly", users: 200, requests: 6000, start: -3 * time.Hour, end: 6 * time.Hour,
		urls: []simURL{{path: "/mypage", template: "/mypage", class: "personal", ttl: 3 * time.Hour, weight: 1},
			{path: "/mypage/points", template: "/mypage/points", class: "personal", weight: 3},
			{path: "/mypage/history", template: "/mypage/history", class: "personal", ttl: 4 * time.Hour, weight: 1}},
		originMin: 100, originMax: 3000},
	{name: "cloudfront collapsed as hits", seed: 7, vendor: "cloudfront", users: 500, anonymous: 0.05, requests: 20000, start: -30 * time.Minute, end: 5 * time.Hour,
		urls: []simURL{{path: "/mypage", template: "/mypage", class: "personal", weight: 4},
			{path: "/mypage/cart", template: "/mypage/cart", class: "personal", ttl: 10 * time.Second, weight: 1}},
		originMin: 50, originMax: 2500, burst: 0.05},
	// Each POP has its own cache: fetches of one URL at two POPs in flight
	// at once, each POP's collapsed responses belonging to its own fetch.
	{name: "two POPs fetching at once", seed: 8, vendor: "fastly", users: 60, requests: 6000, start: 0, end: time.Hour,
		urls:      []simURL{{path: "/mypage", template: "/mypage", class: "personal", weight: 1}},
		originMin: 300, originMax: 3000, noCollapse: 0.1, pops: []string{"NRT", "KIX"}},
}

// TestIncidentQueriesEqualTruth runs each incident shape through the
// incident_* queries and compares every row with the simulation's truth,
// on the 18.16 server and on the embedded modern engine (the same rows
// copied; LOGPIPE_INCIDENT_MODERN=0 skips it).
func TestIncidentQueriesEqualTruth(t *testing.T) {
	if testing.Short() {
		t.Skip("needs ClickHouse")
	}
	params := map[string]string{
		"since": incSince.Format("2006-01-02 15:04:05"), "until": incUntil.Format("2006-01-02 15:04:05"),
		"lookback_s": fmt.Sprint(int(incLookback / time.Second)),
	}
	scale := 1
	if v := os.Getenv("LOGPIPE_INCIDENT_SCALE"); v != "" { // e.g. 10: ten times the users and requests
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("LOGPIPE_INCIDENT_SCALE=%q: want a positive integer", v)
		}
		scale = n
	}
	var modern *chdbtest.Engine
	var v schemas.ServerVersion
	if os.Getenv("LOGPIPE_INCIDENT_MODERN") != "0" {
		modern, v = modernDB(t, nil)
	}
	for _, s := range incidentShapes {
		s.users *= scale
		s.requests *= scale
		t.Run(s.name, func(t *testing.T) {
			conn := freshDB(t)
			rows := simulate(s)
			insertSim(t, conn, s, rows)
			want := truth(s, rows)
			t.Logf("%d requests: %d leaked responses, %d owners, %d producer unknown, %d own-page responses",
				len(rows), want.leaks, len(want.owners), want.unknown, want.own)
			if want.leaks == 0 {
				t.Fatal("the shape produced no leak: it tests nothing")
			}
			if strings.Contains(s.name, "outside") && want.unknown == 0 {
				t.Fatal("no response whose fetch is outside the data: the shape tests nothing")
			}
			if strings.Contains(s.name, "own page") && want.own == 0 {
				t.Fatal("no session got its own page from a shared object: the shape tests nothing")
			}
			if strings.Contains(s.name, "two POPs") {
				other := 0
				for _, r := range rows {
					if ms := r.t.UnixMilli(); r.otherPOP && ms >= incSince.UnixMilli() && ms < incUntil.UnixMilli() {
						other++
					}
				}
				t.Logf("%d collapsed responses whose owner differs if the POP is ignored", other)
				if other == 0 {
					t.Fatal("no response whose owner depends on the POP: the shape tests nothing")
				}
			}
			checks := []struct {
				query string
				want  []string
			}{{"incident_pairs", want.pairs}, {"incident_owners", want.owners}, {"incident_summary", want.summary}}
			for _, c := range checks {
				got := runIncidentQuery(t, conn, c.query, params)
				compareRows(t, c.query+" on 18.16", got, c.want)
			}
			if modern == nil {
				return
			}
			// The same rows in the embedded modern engine, in its own rendering
			// (one engine for all shapes: migrating it is the slow part).
			modern.MustExec(t, "TRUNCATE TABLE cdn_requests")
			data, err := httpTSV(chserver.Shared(t), conn.Database(), "SELECT * FROM cdn_requests")
			if err != nil {
				t.Fatal(err)
			}
			modern.MustExec(t, "INSERT INTO cdn_requests FORMAT TabSeparated\n"+data)
			for _, c := range checks {
				q, err := schemas.LookupQuery(c.query)
				if err != nil {
					t.Fatal(err)
				}
				sql, err := q.For(v).Render(params)
				if err != nil {
					t.Fatal(err)
				}
				rows, err := modern.Query(sql)
				if err != nil {
					t.Fatalf("%s on %s: %v", c.query, v, err)
				}
				var got []string
				for _, r := range rows {
					got = append(got, strings.Join(r, "|"))
				}
				compareRows(t, c.query+" on "+v.String(), got, c.want)
			}
		})
	}
}

func runIncidentQuery(t *testing.T, conn *chclient.Conn, name string, params map[string]string) []string {
	t.Helper()
	q, err := schemas.LookupQuery(name)
	if err != nil {
		t.Fatal(err)
	}
	sql, err := q.Render(params)
	if err != nil {
		t.Fatal(err)
	}
	_, rows, err := conn.Query(context.Background(), sql)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var out []string
	for _, r := range rows {
		out = append(out, strings.Join(r, "|"))
	}
	return out
}

// compareRows reports the first differences between two row lists.
func compareRows(t *testing.T, name string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d rows, want %d", name, len(got), len(want))
	}
	shown := 0
	for i := 0; i < max(len(got), len(want)) && shown < 10; i++ {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			t.Errorf("%s row %d:\n got: %s\nwant: %s", name, i+1, g, w)
			shown++
		}
	}
}
