package sample

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strings"
	"time"
)

// BrowsingOptions shape normal web traffic through a CDN, for precision
// tests of leak detection: logged-in users (their browsers send the
// session cookie on every request) and anonymous visitors on public item
// and search pages the CDN caches, bots, static assets, personal pages
// passed to the origin, logins. Optionally, from LeakFrom on, the CDN
// caches the personal pages under LeakPaths with a TTL of 0 and collapses
// concurrent requests for one URL onto one origin fetch (the 2017
// incident).
type BrowsingOptions struct {
	Start    time.Time
	Span     time.Duration
	Rate     float64 // requests per second; default 200
	Sessions int     // distinct visitors; default 400
	// LoggedIn is the share of visitors with a session; default 0.6.
	LoggedIn float64
	LeakFrom time.Time
	// LeakPaths are path prefixes the CDN caches from LeakFrom; default
	// /mypage.
	LeakPaths []string
}

// BrowsingSummary is what the generator knows about its traffic.
type BrowsingSummary struct {
	Requests int
	// Leaked maps "host | path_template" to the request time of the
	// first response that went to a session other than the one it was
	// generated for.
	Leaked map[string]time.Time
	// LeakedResponses counts those responses; LeakedSessions the
	// sessions that got one.
	LeakedResponses int
	LeakedSessions  int
	// FirstLeak maps the same keys to the index of that first line.
	FirstLeak map[string]int
}

// collapseWindow is how long an origin fetch of a personal page takes:
// requests for the same URL meanwhile wait for it and get its response.
const collapseWindow = 800 * time.Millisecond

// Browsing generates the traffic as Fastly JSON lines in time order, keyed
// by URL.
func Browsing(seed uint64, o BrowsingOptions) ([]Line, BrowsingSummary) {
	if o.Rate <= 0 {
		o.Rate = 200
	}
	if o.Sessions <= 0 {
		o.Sessions = 400
	}
	if o.LoggedIn <= 0 {
		o.LoggedIn = 0.6
	}
	if len(o.LeakPaths) == 0 {
		o.LeakPaths = []string{"/mypage"}
	}
	r := rand.New(rand.NewPCG(seed, 7))
	n := int(o.Span.Seconds() * o.Rate)
	sum := BrowsingSummary{Leaked: map[string]time.Time{}, FirstLeak: map[string]int{}}
	leakedSessions := map[int]bool{}
	type cached struct {
		until   time.Time
		version int
	}
	public := map[string]cached{}
	type flight struct {
		owner int
		until time.Time
	}
	inFlight := map[string]flight{}
	lines := make([]Line, 0, n)
	step := time.Duration(float64(time.Second) / o.Rate)
	for i := 0; i < n; i++ {
		t := o.Start.Add(step * time.Duration(i))
		session := r.IntN(o.Sessions)
		loggedIn := float64(session) < o.LoggedIn*float64(o.Sessions)
		l := fastlyLine{
			Timestamp: t.UTC().Format("2006-01-02T15:04:05.000Z"), ClientIP: fmt.Sprintf("198.51.%d.%d", session/250%250, session%250+1),
			GeoCountry: "JP", Host: "www.example.jp", RequestMethod: "GET", RequestProtocol: "HTTP/2",
			RequestUA: userAgents[session%3], RequestID: fmt.Sprintf("%016x", r.Uint64()), POP: pops[session%len(pops)],
			ServiceID: "4XtGnh3XXqFjk2ofQ6Dp2y", ServiceVersion: 41, ResponseStatus: 200,
		}
		bot := r.IntN(100) < 8
		if bot {
			l.RequestUA, loggedIn = userAgents[4], false
		}
		if loggedIn {
			l.RequestCookie = fmt.Sprintf("_ga=GA1.2.%d; session=u%08x; lang=ja", session*7919, uint32(session)*2654435761)
		}
		leak := !o.LeakFrom.IsZero() && !t.Before(o.LeakFrom)
		if leak {
			l.ServiceVersion = 42
		}
		// cache serves a public page from the simulated edge cache.
		cache := func(url string, ttl time.Duration, base int) {
			c, ok := public[url]
			if ok && t.Before(c.until) {
				l.ResponseState = pick(r, "HIT", 97, "HIT-CLUSTER", 3)
				l.Age = int(ttl.Seconds() - c.until.Sub(t).Seconds())
			} else {
				l.ResponseState = "MISS"
				c = cached{until: t.Add(ttl), version: c.version + 1}
				public[url] = c
			}
			// One body per URL version, in the encoding the browser took.
			size := base + c.version%3*17
			if r.IntN(4) == 0 {
				size = size * 13 / 10 // gzip rather than br
			}
			l.ResponseBodySize = size
			l.ETag = fmt.Sprintf(`W/"%x-%d"`, hash32(url), c.version)
			l.CacheControl = fmt.Sprintf("public, max-age=%d", int(ttl.Seconds()))
			l.Vary = "Accept-Encoding"
		}
		k := r.IntN(100)
		if bot && k >= 82 {
			k = r.IntN(82) // crawlers read public pages and assets
		}
		switch {
		case k < 40: // static assets
			ext := []string{"css", "js", "png", "webp", "woff2"}[r.IntN(5)]
			l.URL = fmt.Sprintf("/static/%s/app.%x.%s", ext, r.IntN(30), ext)
			l.ContentType = map[string]string{"css": "text/css", "js": "application/javascript", "png": "image/png", "webp": "image/webp", "woff2": "font/woff2"}[ext]
			cache(l.URL, 24*time.Hour, 2000+int(hash32(l.URL)%150000))
			l.CacheControl = "public, max-age=31536000, immutable"
		case k < 70: // item pages: public, cached for a minute
			l.URL = fmt.Sprintf("/items/m%011d", 10000000000+r.IntN(1500))
			l.ContentType = "text/html; charset=utf-8"
			cache(l.URL, time.Minute, 30000+int(hash32(l.URL)%40000))
		case k < 82: // search pages: public, cached for 30 s
			l.URL = "/search"
			q := fmt.Sprintf("keyword=%s&page=%d", []string{"camera", "bag", "shoes", "watch", "lens", "coat"}[r.IntN(6)], 1+r.IntN(3))
			l.ContentType = "text/html; charset=utf-8"
			cache(l.URL+"?"+q, 30*time.Second, 20000+int(hash32(q)%20000))
			l.URL += "?" + q
		case k < 95: // personal pages: no-cache and an Expires in the past, as in 2017
			l.URL = []string{"/mypage", "/mypage/points", fmt.Sprintf("/mypage/orders/%d", 5000000+session*13+r.IntN(3))}[r.IntN(3)]
			l.ContentType = "text/html; charset=utf-8"
			l.CacheControl = "no-cache"
			l.Expires = "Thu, 19 Nov 1981 08:52:00 GMT"
			if !loggedIn {
				l.ResponseStatus, l.ResponseState, l.ResponseBodySize = 302, "PASS", 0
				break
			}
			l.ResponseState = "PASS"
			page := 20000 + session*37 + int(hash32(l.URL)%500) // one body per session
			l.ResponseBodySize = page
			if !leak || !hasPrefix(l.URL, o.LeakPaths) {
				break
			}
			if f, ok := inFlight[l.URL]; ok && t.Before(f.until) {
				// Waits for the fetch in flight and gets its response.
				l.ResponseState = "HIT-WAIT"
				l.ResponseBodySize = 20000 + f.owner*37 + int(hash32(l.URL)%500)
				if f.owner != session {
					key := "www.example.jp | " + template(l.URL)
					if _, seen := sum.Leaked[key]; !seen {
						sum.Leaked[key], sum.FirstLeak[key] = t, len(lines)
					}
					sum.LeakedResponses++
					leakedSessions[session] = true
				}
			} else {
				l.ResponseState = "MISS"
				inFlight[l.URL] = flight{owner: session, until: t.Add(collapseWindow)}
			}
		default: // logins
			l.URL = "/login"
			l.RequestMethod = "POST"
			l.ContentType = "text/html; charset=utf-8"
			l.CacheControl = "private, no-store"
			l.SetCookie = "session=new; Path=/; HttpOnly; Secure"
			l.ResponseState, l.ResponseStatus = "PASS", 303
		}
		if strings.HasPrefix(l.ResponseState, "MISS") || l.ResponseState == "PASS" {
			l.ElapsedUsec = 30000 + r.IntN(300000)
		} else {
			l.ElapsedUsec = 200 + r.IntN(3000)
		}
		lines = append(lines, Line{Key: []byte(l.URL), Value: marshalPlain(l), Time: t})
		sum.Requests++
	}
	sum.LeakedSessions = len(leakedSessions)
	return lines, sum
}

func hasPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// template is the path template of the generator's personal URLs.
func template(url string) string {
	if strings.HasPrefix(url, "/mypage/orders/") {
		return "/mypage/orders/:id"
	}
	return url
}

func hash32(s string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(s))
	return h.Sum32()
}
