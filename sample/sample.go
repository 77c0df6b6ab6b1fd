// Package sample generates realistic batch-job events and CDN access-log
// lines for the demo, the end-to-end tests and the benchmarks. Output is
// deterministic for a given seed.
package sample

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	json "github.com/goccy/go-json"
)

// Line is one log line and the Kafka key it should be produced with.
type Line struct {
	Key   []byte
	Value []byte
	Time  time.Time
}

// jobSpec describes one simulated batch job.
type jobSpec struct {
	name     string
	every    time.Duration
	mean     time.Duration // typical duration
	failRate float64
	steps    []string
	hosts    []string
}

var jobSpecs = []jobSpec{
	{"payout-close", 24 * time.Hour, 14 * time.Minute, 0.05, []string{"fetch-transfers", "reconcile", "write-ledger", "notify-bank"}, []string{"batch-01", "batch-02"}},
	{"search-index", time.Hour, 6 * time.Minute, 0.02, []string{"extract", "build", "swap"}, []string{"batch-03"}},
	{"mail-digest", 15 * time.Minute, 40 * time.Second, 0.03, nil, []string{"batch-01", "batch-04"}},
	{"report-export", 6 * time.Hour, 3 * time.Minute, 0.15, []string{"query", "render", "upload"}, []string{"batch-02"}},
	{"image-gc", 30 * time.Minute, 90 * time.Second, 0.01, nil, []string{"batch-04"}},
}

type jobEvent struct {
	Time          string             `json:"time"`
	Job           string             `json:"job"`
	RunID         string             `json:"run_id"`
	Event         string             `json:"event"`
	ScheduledTime string             `json:"scheduled_time,omitempty"`
	Attempt       int                `json:"attempt,omitempty"`
	Host          string             `json:"host,omitempty"`
	Step          string             `json:"step,omitempty"`
	Status        string             `json:"status,omitempty"`
	DurationMs    float64            `json:"duration_ms,omitempty"`
	ExitCode      *int               `json:"exit_code,omitempty"`
	Error         string             `json:"error,omitempty"`
	ErrorClass    string             `json:"error_class,omitempty"`
	Counters      map[string]float64 `json:"counters,omitempty"`
	Labels        map[string]string  `json:"labels,omitempty"`
}

// JobSummary is what the generator knows about the runs it made, for
// checks.
type JobSummary struct {
	Runs, Failed, Running int
	// Missed lists runs that were due but never started (one report-export
	// run is left out on purpose, for missed-run detection).
	Missed []string
}

// Jobs simulates the batch jobs from start for span and returns their
// events (started, step, heartbeat, finished/failed) in time order, keyed
// by run id so a run's events stay in one partition.
func Jobs(seed uint64, start time.Time, span time.Duration) ([]Line, JobSummary) {
	r := rand.New(rand.NewPCG(seed, 1))
	var lines []Line
	var sum JobSummary
	end := start.Add(span)
	emit := func(ev jobEvent, t time.Time) {
		ev.Time = t.UTC().Format("2006-01-02T15:04:05.000Z")
		b, _ := json.Marshal(ev)
		lines = append(lines, Line{Key: []byte(ev.Job + "/" + ev.RunID), Value: b, Time: t})
	}
	for _, j := range jobSpecs {
		for due := start.Truncate(j.every).Add(j.every); due.Before(end); due = due.Add(j.every) {
			// payout-close runs on business days only.
			if j.name == "payout-close" && (due.Weekday() == time.Saturday || due.Weekday() == time.Sunday) {
				continue
			}
			runID := due.UTC().Format("20060102T1504")
			if j.name == "report-export" && due.Add(2*j.every).After(end) && !due.Add(j.every).After(end) {
				sum.Missed = append(sum.Missed, j.name+" "+runID)
				continue // the run that never started
			}
			sum.Runs++
			host := j.hosts[r.IntN(len(j.hosts))]
			base := jobEvent{Job: j.name, RunID: runID, ScheduledTime: due.UTC().Format(time.RFC3339), Attempt: 1, Host: host,
				Labels: map[string]string{"env": "prod", "team": teamOf(j.name)}}
			startAt := due.Add(time.Duration(r.ExpFloat64()*4) * time.Second)
			dur := time.Duration(float64(j.mean) * math.Exp(r.NormFloat64()*0.25))
			fail := r.Float64() < j.failRate
			ev := base
			ev.Event = "started"
			emit(ev, startAt)
			if startAt.Add(dur).After(end) {
				sum.Running++
				continue // still running at the end of the simulation
			}
			t := startAt
			items := float64(1000 + r.IntN(50000))
			failedStep := -1
			if fail && len(j.steps) > 0 {
				failedStep = r.IntN(len(j.steps))
			}
			for i, s := range j.steps {
				sd := dur / time.Duration(len(j.steps))
				t = t.Add(sd)
				ev := base
				ev.Event = "step"
				ev.Step = s
				ev.Status = "succeeded"
				ev.DurationMs = float64(sd.Milliseconds())
				if i == failedStep {
					ev.Status = "failed"
					ev.ErrorClass = "TimeoutError"
					ev.Error = s + ": upstream did not answer within 30s"
					emit(ev, t)
					break
				}
				emit(ev, t)
				if sd > 2*time.Minute {
					hb := base
					hb.Event = "heartbeat"
					hb.Counters = map[string]float64{"items_done": math.Round(items * float64(i+1) / float64(len(j.steps)))}
					emit(hb, t.Add(-sd/2))
				}
			}
			fin := base
			fin.Counters = map[string]float64{"items_in": items, "items_out": items}
			code := 0
			if fail {
				sum.Failed++
				code = 1 + r.IntN(2)
				fin.Event = "failed"
				fin.ErrorClass = "TimeoutError"
				fin.Error = "run failed: upstream did not answer within 30s"
				fin.Counters["items_out"] = math.Round(items * r.Float64())
			} else {
				fin.Event = "finished"
			}
			fin.ExitCode = &code
			emit(fin, startAt.Add(dur))
		}
	}
	sort.SliceStable(lines, func(i, k int) bool { return lines[i].Time.Before(lines[k].Time) })
	return lines, sum
}

func teamOf(job string) string {
	switch {
	case strings.HasPrefix(job, "payout"):
		return "payments"
	case strings.HasPrefix(job, "search"), strings.HasPrefix(job, "image"):
		return "platform"
	}
	return "growth"
}

// CDNOptions shape the CDN traffic.
type CDNOptions struct {
	Requests int
	Start    time.Time
	Span     time.Duration
	// IncidentFrom and IncidentTo, if set, are a window in which the CDN
	// caches personal pages (the 2017 incident): /mypage answered with
	// no-cache headers and an Expires in the past is served as HIT or
	// HIT-WAIT, to sessions other than the one it was built for.
	IncidentFrom, IncidentTo time.Time
}

type fastlyLine struct {
	Timestamp        string `json:"timestamp"`
	ClientIP         string `json:"client_ip"`
	GeoCountry       string `json:"geo_country_code"`
	Host             string `json:"host"`
	URL              string `json:"url"`
	RequestMethod    string `json:"request_method"`
	RequestProtocol  string `json:"request_protocol"`
	RequestUA        string `json:"request_user_agent"`
	RequestCookie    string `json:"request_cookie"`
	RequestID        string `json:"request_id"`
	ResponseState    string `json:"response_state"`
	ResponseStatus   int    `json:"response_status"`
	ResponseBodySize int    `json:"response_body_size"`
	CacheControl     string `json:"response_cache_control"`
	Expires          string `json:"response_expires"`
	Age              int    `json:"response_age"`
	SetCookie        string `json:"response_set_cookie"`
	ContentType      string `json:"response_content_type"`
	ETag             string `json:"response_etag,omitempty"`
	Vary             string `json:"response_vary,omitempty"`
	ElapsedUsec      int    `json:"time_elapsed_usec"`
	OriginTTFBMs     int    `json:"origin_ttfb_ms,omitempty"` // origin fetches: incident pairing needs it
	POP              string `json:"pop"`
	ServiceID        string `json:"service_id"`
	ServiceVersion   int    `json:"service_version"`
}

var (
	pops       = []string{"NRT", "HND", "KIX", "ITM", "SIN"}
	userAgents = []string{
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
		"okhttp/4.12.0",
		"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
		"Pingdom.com_bot_version_1.4_(http://www.pingdom.com/)",
	}
)

// CDNSummary is what the generator knows about the lines it made.
type CDNSummary struct {
	Requests       int
	PersonalCached int // personal pages served from cache or collapsed
	Sessions       int
}

// CDN generates Fastly JSON access-log lines in time order.
func CDN(seed uint64, o CDNOptions) ([]Line, CDNSummary) {
	r := rand.New(rand.NewPCG(seed, 2))
	var sum CDNSummary
	nSessions := max(o.Requests/20, 10)
	sum.Sessions = nSessions
	lines := make([]Line, 0, o.Requests)
	step := o.Span / time.Duration(max(o.Requests, 1))
	for i := 0; i < o.Requests; i++ {
		t := o.Start.Add(step*time.Duration(i) + time.Duration(r.IntN(int(max(step, 1)))))
		session := r.IntN(nSessions)
		l := fastlyLine{
			Timestamp:       t.UTC().Format("2006-01-02T15:04:05.000Z"),
			ClientIP:        fmt.Sprintf("203.0.%d.%d", session/250%250, session%250+1),
			GeoCountry:      "JP",
			Host:            "www.example.jp",
			RequestMethod:   "GET",
			RequestProtocol: "HTTP/2",
			RequestUA:       userAgents[r.IntN(len(userAgents))],
			RequestID:       fmt.Sprintf("%016x", r.Uint64()),
			POP:             pops[r.IntN(len(pops))],
			ServiceID:       "4XtGnh3XXqFjk2ofQ6Dp2y",
			ServiceVersion:  41,
			ResponseStatus:  200,
		}
		loggedIn := r.IntN(3) > 0
		if loggedIn {
			l.RequestCookie = fmt.Sprintf("_ga=GA1.2.%d; session=s%08x; lang=ja", r.IntN(1e9), uint32(session)*2654435761)
		}
		incident := !o.IncidentFrom.IsZero() && !t.Before(o.IncidentFrom) && t.Before(o.IncidentTo)
		if incident {
			l.ServiceVersion = 42
		}
		switch k := r.IntN(100); {
		case k < 45: // static assets
			ext := []string{"css", "js", "png", "webp", "woff2"}[r.IntN(5)]
			l.URL = fmt.Sprintf("/static/%s/app.%x.%s", ext, r.IntN(40), ext)
			l.ContentType = map[string]string{"css": "text/css", "js": "application/javascript", "png": "image/png", "webp": "image/webp", "woff2": "font/woff2"}[ext]
			l.CacheControl = "public, max-age=31536000, immutable"
			l.ResponseState = pick(r, "HIT", 92, "MISS", 6, "HIT-STALE", 2)
			l.ResponseBodySize = 2000 + r.IntN(200000)
			l.Age = r.IntN(86400)
		case k < 70: // item pages, cacheable briefly
			l.URL = fmt.Sprintf("/items/m%011d", 10000000000+r.IntN(5000))
			if r.IntN(5) == 0 {
				l.URL += "?ref=top&utm_source=mail"
			}
			l.ContentType = "text/html; charset=utf-8"
			l.CacheControl = "public, max-age=60"
			l.ResponseState = pick(r, "HIT", 55, "MISS", 40, "HIT-WAIT", 3, "MISS-CLUSTER", 2)
			l.ResponseBodySize = 30000 + r.IntN(60000)
		case k < 82: // search and API
			l.URL = fmt.Sprintf("/api/v1/search?q=%s&page=%d", []string{"camera", "bag", "shoes", "watch"}[r.IntN(4)], 1+r.IntN(5))
			l.ContentType = "application/json"
			l.CacheControl = "no-cache"
			l.ResponseState = "PASS"
			l.ResponseBodySize = 5000 + r.IntN(20000)
		case k < 95: // personal pages
			l.URL = []string{"/mypage", "/mypage/purchases", "/mypage/points", "/api/users/me", "/transaction/" + fmt.Sprint(1e8+r.IntN(1e6))}[r.IntN(5)]
			l.ContentType = "text/html; charset=utf-8"
			if strings.HasPrefix(l.URL, "/api") {
				l.ContentType = "application/json"
			}
			l.CacheControl = "no-cache, no-store, must-revalidate"
			l.Expires = "Thu, 19 Nov 1981 08:52:00 GMT"
			l.ResponseBodySize = 20000 + r.IntN(30000)
			if !loggedIn {
				l.ResponseStatus = 302
				l.ResponseBodySize = 0
				l.ResponseState = "PASS"
				break
			}
			l.ResponseState = "PASS"
			if incident {
				// The new CDN takes Expires-in-the-past as TTL 0 and
				// collapses concurrent requests onto one origin fetch.
				l.ResponseState = pick(r, "MISS", 30, "HIT-WAIT", 45, "HIT", 25)
				if l.ResponseState != "MISS" {
					sum.PersonalCached++
				}
			}
			if r.IntN(10) == 0 {
				l.SetCookie = "session=rotated; Path=/; HttpOnly; Secure"
			}
		default: // login and errors
			if r.IntN(2) == 0 {
				l.URL = "/login"
				l.RequestMethod = "POST"
				l.ContentType = "text/html; charset=utf-8"
				l.CacheControl = "private, no-store"
				l.SetCookie = "session=new; Path=/; HttpOnly; Secure"
				l.ResponseState = "PASS"
				l.ResponseStatus = 303
			} else {
				l.URL = fmt.Sprintf("/items/m%011d", 10000000000+r.IntN(5000))
				l.ContentType = "text/html; charset=utf-8"
				l.ResponseState = pick(r, "MISS", 60, "ERROR", 40)
				l.ResponseStatus = []int{404, 500, 502, 503}[r.IntN(4)]
			}
		}
		if l.ResponseState == "MISS" || l.ResponseState == "PASS" || strings.HasPrefix(l.ResponseState, "MISS") {
			l.ElapsedUsec = 20000 + r.IntN(400000)
			if l.ResponseState == "MISS" {
				l.OriginTTFBMs = l.ElapsedUsec / 1000
			}
		} else {
			l.ElapsedUsec = 300 + r.IntN(5000)
		}
		b := marshalPlain(l) // like Fastly's json.escape: no HTML escaping
		lines = append(lines, Line{Key: []byte(l.URL), Value: b, Time: t})
		sum.Requests++
	}
	return lines, sum
}

// marshalPlain encodes v as JSON without HTML escaping (& stays &).
func marshalPlain(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
	return bytes.TrimRight(buf.Bytes(), "\n")
}

// pick chooses among (value, weight) pairs.
func pick(r *rand.Rand, pairs ...any) string {
	total := 0
	for i := 1; i < len(pairs); i += 2 {
		total += pairs[i].(int)
	}
	n := r.IntN(total)
	for i := 0; i < len(pairs); i += 2 {
		n -= pairs[i+1].(int)
		if n < 0 {
			return pairs[i].(string)
		}
	}
	return pairs[0].(string)
}
