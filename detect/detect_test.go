package detect

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/logpipe/logpipe/tables"
	"github.com/logpipe/logpipe/transform"
	"github.com/logpipe/logpipe/watch"
)

var t0 = time.Date(2026, 11, 25, 5, 0, 0, 0, time.UTC)

// line is one request in a scenario: at seconds, path, Fastly state,
// session (0 = anonymous), and optional response fields.
type line struct {
	at      float64
	path    string
	state   string
	session uint64
	size    uint64
	etag    string
	cc      string
	vary    string
	cookie  bool // response Set-Cookie
}

func request(l line) transform.CDNRequest {
	r := transform.CDNRequest{
		Time: t0.Add(time.Duration(l.at * float64(time.Second))), Host: "www.example.jp", Path: l.path,
		PathTemplate: transform.TemplatePath(l.path), Status: 200, SessionHash: l.session, HasSessionCookie: l.session != 0,
		BytesSent: l.size, ETag: l.etag, CacheControl: l.cc, Vary: l.vary, SetCookie: l.cookie, CacheRaw: l.state,
	}
	if r.BytesSent == 0 {
		r.BytesSent = 1000
	}
	r.PathClass = "other"
	if strings.HasPrefix(l.path, "/mypage") {
		r.PathClass = "personal"
	}
	r.CacheStatus, r.Collapsed = transform.FastlyState(l.state)
	r.FromCache = transform.FromCache(r.CacheStatus)
	return r
}

func run(d *Detector, lines []line) []Finding {
	for i, l := range lines {
		r := request(l)
		d.Observe(&r, tables.Meta{Topic: "cdn", Offset: int64(i)})
	}
	var out []Finding
	for {
		select {
		case f := <-d.Findings():
			out = append(out, f)
		default:
			return out
		}
	}
}

// TestDetector: what is a leak and what is normal sharing.
func TestDetector(t *testing.T) {
	for _, tc := range []struct {
		name  string
		lines []line
		want  string // findings as "session<-owner evidence", joined by ";"
	}{
		{"logged-in users on a cached public page", []line{
			{0, "/items/1", "MISS", 1, 0, "", "", "", false}, {1, "/items/1", "HIT", 2, 0, "", "", "", false},
			{2, "/items/1", "HIT", 3, 0, "", "", "", false}, {3, "/items/1", "HIT-WAIT", 4, 0, "", "", "", false}}, ""},
		{"bot and anonymous hits", []line{
			{0, "/search", "MISS", 0, 0, "", "", "", false}, {1, "/search", "HIT", 0, 0, "", "", "", false}, {2, "/search", "HIT", 5, 0, "", "", "", false}}, ""},
		{"personal pages passed", []line{
			{0, "/mypage", "PASS", 1, 900, "", "private", "", false}, {0.1, "/mypage", "PASS", 2, 950, "", "private", "", false}}, ""},
		{"personal page collapsed onto another session", []line{
			{0, "/mypage", "MISS", 1, 0, "", "", "", false}, {0.1, "/mypage", "HIT-WAIT", 2, 0, "", "", "", false},
			{0.2, "/mypage", "HIT", 3, 0, "", "", "", false}, {0.3, "/mypage", "HIT", 1, 0, "", "", "", false}}, "2<-1 class;3<-1 class"},
		{"own copy served again", []line{
			{0, "/mypage", "MISS", 1, 0, "", "", "", false}, {5, "/mypage", "HIT", 1, 0, "", "", "", false}}, ""},
		{"a pass does not change whose copy is cached", []line{
			{0, "/mypage", "MISS", 1, 0, "", "", "", false}, {1, "/mypage", "PASS", 2, 0, "", "", "", false}, {2, "/mypage", "HIT", 1, 0, "", "", "", false}}, ""},
		{"set-cookie response served to another session", []line{
			{0, "/p", "MISS", 1, 0, "", "", "", true}, {1, "/p", "HIT", 2, 0, "", "", "", false}}, "2<-1 set_cookie"},
		{"vary cookie with etags: each session gets its own copy", []line{
			{0, "/p", "MISS", 1, 0, "a", "", "Cookie", false}, {1, "/p", "MISS", 2, 0, "b", "", "Cookie", false},
			{2, "/p", "HIT", 1, 0, "a", "", "Cookie", false}, {3, "/p", "HIT", 2, 0, "b", "", "Cookie", false}}, ""},
		{"vary cookie with etags: a copy served to the wrong session", []line{
			{0, "/p", "MISS", 1, 0, "a", "", "Cookie", false}, {1, "/p", "MISS", 2, 0, "b", "", "Cookie", false},
			{2, "/p", "HIT", 3, 0, "a", "", "Cookie", false}}, "3<-1 vary,body"},
		{"origin personalises silently: found when the evidence arrives", []line{
			{0, "/p/home", "MISS", 1, 1000, "", "", "", false}, {1, "/p/home", "HIT-WAIT", 2, 1000, "", "", "", false},
			{2, "/p/home", "PASS", 3, 1200, "", "", "", false}, {3, "/p/home", "PASS", 4, 1300, "", "", "", false},
			{4, "/p/home", "PASS", 5, 1400, "", "", "", false}}, "2<-1 body"},
		{"strong etags differ per session", []line{
			{0, "/p/feed", "MISS", 1, 1000, `"u1"`, "", "", false}, {1, "/p/feed", "PASS", 2, 1000, `"u2"`, "", "", false},
			{2, "/p/feed", "HIT", 3, 1000, "", "", "", false}}, "3<-1 body"},
		{"a public page in two encodings for many sessions", []line{
			{0, "/items/9", "MISS", 1, 800, `W/"v1"`, "", "", false}, {1, "/items/9", "MISS", 2, 1000, `W/"v1"`, "", "", false},
			{2, "/items/9", "MISS", 3, 800, `W/"v1"`, "", "", false}, {3, "/items/9", "MISS", 4, 1000, `W/"v1"`, "", "", false},
			{4, "/items/9", "HIT", 5, 1000, `W/"v1"`, "", "", false}}, ""},
		{"a public page that changed between two fetches minutes apart", []line{
			{0, "/items/2", "MISS", 1, 1000, "", "", "", false}, {300, "/items/2", "MISS", 2, 1010, "", "", "", false},
			{301, "/items/2", "HIT", 3, 1010, "", "", "", false}}, ""},
		{"anonymous copy served to a logged-in session", []line{
			{0, "/mypage", "MISS", 0, 0, "", "", "", false}, {1, "/mypage", "HIT", 2, 0, "", "", "", false}}, ""},
		{"collapsed before any origin fetch is seen", []line{
			{0, "/mypage/points", "MISS-WAIT", 4, 0, "", "", "", false}, {0.1, "/mypage/points", "HIT-WAIT", 5, 0, "", "", "", false}}, "5<-4 class"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := New(Options{})
			var got []string
			for _, f := range run(d, tc.lines) {
				got = append(got, strings.Join([]string{itoa(f.Session) + "<-" + itoa(f.Owner), f.Evidence()}, " "))
			}
			if strings.Join(got, ";") != tc.want {
				t.Errorf("findings %q, want %q", strings.Join(got, ";"), tc.want)
			}
		})
	}
}

func itoa(u uint64) string  { return strconv.FormatUint(u, 10) }
func uitoa(u uint64) string { return itoa(u) }

// TestDetectorBoundedMemory: the LRU keeps at most MaxObjects keys.
func TestDetectorBoundedMemory(t *testing.T) {
	d := New(Options{MaxObjects: 160})
	for i := 0; i < 10_000; i++ {
		r := request(line{float64(i), "/items/" + uitoa(uint64(i)), "MISS", 1, 0, "", "", "", false})
		d.Observe(&r, tables.Meta{})
	}
	if n := d.Objects(); n > 160+shardCount {
		t.Errorf("%d objects remembered, want at most %d", n, 160+shardCount)
	}
}

type receiver struct {
	mu     sync.Mutex
	events []watch.Event
	srv    *httptest.Server
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var e watch.Event
		if err := json.NewDecoder(req.Body).Decode(&e); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		r.mu.Lock()
		r.events = append(r.events, e)
		r.mu.Unlock()
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) take() []watch.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.events
	r.events = nil
	return out
}

// TestAlerterGroups: one alert per host + template however many URLs
// and sessions, sent again only when it grew and UpdateEvery passed;
// silences by template or class; severity from the evidence.
func TestAlerterGroups(t *testing.T) {
	rec := newReceiver(t)
	a := NewAlerter(nil, AlertOptions{
		Channels: map[string]watch.Notifier{"ops": watch.Webhook{URL: rec.srv.URL}}, Names: []string{"ops"}, SendWarnings: true,
		Silences: []Silence{{Template: "/known/:id", Until: t0.Add(time.Hour)}, {Class: "auth", Until: t0.Add(time.Hour)}},
	}, slog.New(slog.DiscardHandler))
	now := t0
	a.Now = func() time.Time { return now }
	ctx := context.Background()
	f := func(path, class string, session, owner uint64, sig transform.Signal, body bool) Finding {
		return Finding{Time: now, Host: "www.example.jp", Path: path, Template: transform.TemplatePath(path), Class: class,
			Session: session, Owner: owner, Signals: sig, Body: body}
	}
	for i := uint64(1); i <= 5; i++ {
		a.Handle(ctx, f("/mypage/orders/"+uitoa(100+i), "personal", 10+i, 1, transform.SignalClass, false))
		a.Handle(ctx, f("/known/"+uitoa(i), "other", 10+i, 1, transform.SignalSetCookie, false))
		a.Handle(ctx, f("/login", "auth", 10+i, 1, transform.SignalClass, false))
	}
	a.Handle(ctx, f("/feed/7", "other", 30, 31, 0, true))
	a.Notify(ctx)
	got := rec.take()
	var keys []string
	for _, e := range got {
		keys = append(keys, e.Key+" "+e.Severity+" "+strings.Join(e.Evidence.Values[3:6], "/"))
	}
	if want := "www.example.jp | /feed/:id warning 1/1/1;www.example.jp | /mypage/orders/:id critical 5/5/1"; strings.Join(keys, ";") != want {
		t.Fatalf("first notifications:\n%s\nwant\n%s", strings.Join(keys, ";"), want)
	}
	// More of the same within UpdateEvery: nothing; after it: one update.
	now = now.Add(10 * time.Second)
	a.Handle(ctx, f("/mypage/orders/200", "personal", 50, 2, transform.SignalClass, false))
	a.Notify(ctx)
	if got := rec.take(); len(got) != 0 {
		t.Fatalf("within UpdateEvery: %d notifications", len(got))
	}
	now = now.Add(time.Minute)
	a.Notify(ctx)
	got = rec.take()
	if len(got) != 1 || !got[0].Update || got[0].Evidence.Values[3] != "6" || got[0].Evidence.Values[4] != "6" || got[0].Evidence.Values[5] != "2" {
		t.Fatalf("update: %+v", got)
	}
	// Nothing new: nothing sent.
	now = now.Add(2 * time.Minute)
	a.Notify(ctx)
	if got := rec.take(); len(got) != 0 {
		t.Fatalf("no growth: %d notifications", len(got))
	}
	// Body-only evidence stays a warning however many sessions.
	for i := uint64(0); i < 5; i++ {
		a.Handle(ctx, f("/feed/7", "other", 60+i, 31, 0, true))
	}
	a.Notify(ctx)
	if got := rec.take(); len(got) != 1 || got[0].Severity != "warning" || got[0].Key != "www.example.jp | /feed/:id" || !got[0].Update {
		t.Fatalf("feed grew: %+v", got)
	}
	if len(a.rows) != 22 {
		t.Errorf("%d finding rows buffered, want 22 (silenced ones are stored too)", len(a.rows))
	}
}

// TestObserveConcurrent: partition workers call Observe at once (run
// with -race); the findings are those of one reader when a URL's
// records stay in order.
func TestObserveConcurrent(t *testing.T) {
	lines := []line{
		{0, "/mypage", "MISS", 1, 0, "", "", "", false}, {0.1, "/mypage", "HIT-WAIT", 2, 0, "", "", "", false},
		{0.2, "/items/1", "MISS", 1, 0, "", "", "", false}, {0.3, "/items/1", "HIT", 2, 0, "", "", "", false},
	}
	d := New(Options{})
	done := make(chan bool)
	for g := 0; g < 4; g++ {
		go func(g int) {
			for i := 0; i < 200; i++ {
				for _, l := range lines {
					l.path += "/" + strconv.Itoa(g) // each goroutine its own URLs, as partitions keyed by URL
					r := request(l)
					d.Observe(&r, tables.Meta{Partition: int32(g)})
				}
			}
			done <- true
		}(g)
	}
	for g := 0; g < 4; g++ {
		<-done
	}
	// Per goroutine: the first /mypage/g HIT-WAIT to session 2 is a leak;
	// later rounds too (owner 1 refetches, 2 is served again).
	if got := d.Found.Load(); got != 4*200 {
		t.Errorf("%d findings, want %d", got, 4*200)
	}
}
