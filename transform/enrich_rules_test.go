package transform

import (
	"strings"
	"testing"
	"time"
)

func testEnricher(t *testing.T) *Enricher {
	t.Helper()
	e, err := NewEnricher(EnrichConfig{
		HashKey:         []byte("0123456789abcdef-test"),
		SessionCookies:  []string{"session", "SID"},
		DropQueryParams: []string{"token", "email"},
		PathClasses: []PathClassRule{
			{Class: "personal", Patterns: []string{"/mypage*", "/api/users/me"}},
			{Class: "auth", Patterns: []string{"/login"}},
			{Class: "static", Patterns: []string{"/assets/"}},
		},
		PathTemplates: []PathTemplateRule{{Match: `^/shops/[^/]+/`, Replace: "/shops/:shop/"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestTemplatePath(t *testing.T) {
	e := testEnricher(t)
	for _, tt := range []struct{ in, want string }{
		{"/items/m12345678901", "/items/:id"},
		{"/items/12345", "/items/:id"},
		{"/u/550e8400-e29b-41d4-a716-446655440000/edit", "/u/:uuid/edit"},
		{"/blob/0123456789abcdef0123", "/blob/:hex"},
		{"/img/123.png", "/img/:id.png"},
		{"/reset/aZ3kQ9pL2xV7mN4bR8tY1wE6", "/reset/:token"},
		{"/users/jane.doe@example.com/profile", "/users/:email/profile"},
		{"/shops/acme/items/99", "/shops/:shop/items/99"}, // user rule wins, then stops
		{"/static/css/app.css", "/static/css/app.css"},
		{"/mypage", "/mypage"},
		{"", "/"},
	} {
		if got := e.Template(tt.in); got != tt.want {
			t.Errorf("Template(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestClassAndUA(t *testing.T) {
	e := testEnricher(t)
	for _, tt := range []struct{ path, want string }{
		{"/mypage/purchases", "personal"}, {"/MyPage", "personal"}, {"/api/users/me", "personal"},
		{"/login", "auth"}, {"/static/app.js", "static"}, {"/items/1", "other"}, {"/assets/v2/bundle", "static"},
	} {
		if got := e.Class(tt.path); got != tt.want {
			t.Errorf("Class(%q) = %q, want %q", tt.path, got, tt.want)
		}
	}
	for _, tt := range []struct{ ua, want string }{
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/124.0", "browser"},
		{"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "bot"},
		{"Pingdom.com_bot_version_1.4_(http://www.pingdom.com/)", "monitor"},
		{"curl/8.5.0", "tool"},
		{"okhttp/4.12.0", "app"},
		{"", "unknown"}, {"-", "unknown"},
	} {
		if got := UAClass(tt.ua); got != tt.want {
			t.Errorf("UAClass(%q) = %q, want %q", tt.ua, got, tt.want)
		}
	}
}

func TestCDNEnrichment(t *testing.T) {
	at := time.Date(2026, 11, 20, 5, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		in    CDNRequest
		flags string // personal,setcookie,private,auth,ttl0 as 0/1
	}{
		{"personal page collapsed", CDNRequest{Path: "/mypage", CacheStatus: CacheMiss, Collapsed: true, Secret: Secrets{Cookie: "a=1; session=abc"}}, "10010"},
		{"personal page passed", CDNRequest{Path: "/mypage", CacheStatus: CachePass, Secret: Secrets{Cookie: "session=abc"}}, "00000"},
		{"set-cookie hit", CDNRequest{Path: "/items/1", CacheStatus: CacheHit, SetCookie: true}, "01000"},
		{"private stale", CDNRequest{Path: "/items/1", CacheStatus: CacheStale, CacheControl: "Private, max-age=0"}, "00100"},
		{"no-store hit", CDNRequest{Path: "/x", CacheStatus: CacheHit, CacheControl: "no-store"}, "00100"},
		{"auth header hit", CDNRequest{Path: "/api/feed", CacheStatus: CacheHit, Secret: Secrets{Authorization: "Bearer xyz"}}, "00010"},
		{"cookie on static asset hit", CDNRequest{Path: "/app.css", CacheStatus: CacheHit, ContentType: "text/css", Secret: Secrets{Cookie: "session=abc"}}, "00000"},
		// A logged-in user on a public cached page: what a CDN is for.
		{"cookie on public page hit", CDNRequest{Path: "/items/1", CacheStatus: CacheHit, ContentType: "text/html", Secret: Secrets{Cookie: "session=abc"}}, "00000"},
		{"cookie on public page collapsed", CDNRequest{Path: "/search", CacheStatus: CacheMiss, Collapsed: true, ContentType: "text/html", Secret: Secrets{Cookie: "session=abc"}}, "00000"},
		{"cookie on page that varies on cookie", CDNRequest{Path: "/items/1", CacheStatus: CacheHit, Vary: "Accept-Encoding, Cookie", Secret: Secrets{Cookie: "session=abc"}}, "00010"},
		{"cookie on private hit", CDNRequest{Path: "/items/1", CacheStatus: CacheHit, CacheControl: "private", Secret: Secrets{Cookie: "session=abc"}}, "00110"},
		{"authorization on public response", CDNRequest{Path: "/api/feed", CacheStatus: CacheHit, CacheControl: "public, max-age=60", Secret: Secrets{Authorization: "Bearer xyz"}}, "00000"},
		{"auth path hit", CDNRequest{Path: "/login", CacheStatus: CacheHit, Secret: Secrets{Cookie: "session=abc"}}, "10010"},
		// Configured classes win over the extension.
		{"personal image hit", CDNRequest{Path: "/mypage/avatar.png", CacheStatus: CacheHit, ContentType: "image/png", Secret: Secrets{Cookie: "session=abc"}}, "10010"},
		{"configured static path with cookie and vary", CDNRequest{Path: "/assets/v2/bundle", CacheStatus: CacheHit, Vary: "Cookie", Secret: Secrets{Cookie: "session=abc"}}, "00000"},
		{"cache deception: .css answered with html", CDNRequest{Path: "/mypage/x.css", CacheStatus: CacheHit, ContentType: "text/html", Secret: Secrets{Cookie: "SID=1"}}, "10010"},
		{"expires in the past, no max-age", CDNRequest{Path: "/x", CacheStatus: CacheMiss, Expires: "Thu, 19 Nov 1981 08:52:00 GMT", CacheControl: "no-cache"}, "00001"},
		{"expires in the past with max-age", CDNRequest{Path: "/x", CacheStatus: CacheMiss, Expires: "Thu, 19 Nov 1981 08:52:00 GMT", CacheControl: "max-age=60"}, "00000"},
		{"expires 0", CDNRequest{Path: "/x", Expires: "0"}, "00001"},
		{"expires in the future", CDNRequest{Path: "/x", Expires: "Fri, 20 Nov 2026 06:00:00 GMT"}, "00000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := testEnricher(t)
			r := tt.in
			r.Time = at
			e.CDN(&r)
			got := string([]byte{b(r.FlagPersonalCached), b(r.FlagSetCookieCached), b(r.FlagPrivateCached), b(r.FlagAuthCached), b(r.FlagTTLZero)})
			if got != tt.flags {
				t.Errorf("flags = %s, want %s (%+v)", got, tt.flags, r)
			}
			if r.Secret != (Secrets{}) {
				t.Errorf("secrets not cleared: %+v", r.Secret)
			}
		})
	}
}

func b(v bool) byte {
	if v {
		return '1'
	}
	return '0'
}

func TestSecretsHashed(t *testing.T) {
	e := testEnricher(t)
	r := CDNRequest{Path: "/x?y", Query: "a=1&token=SECRET&Email=x%40y.z&b=2", Secret: Secrets{Cookie: "lang=ja; SID=abc123", ClientIP: "192.0.2.1", Authorization: "Bearer t"}}
	e.CDN(&r)
	if r.Query != "a=1&b=2" {
		t.Errorf("query = %q, want a=1&b=2", r.Query)
	}
	if !r.HasSessionCookie || !r.HasAuthorization || r.SessionHash != e.Hash("abc123") || r.ClientIPHash != e.Hash("192.0.2.1") {
		t.Errorf("hashes wrong: %+v", r)
	}
	other, _ := NewEnricher(EnrichConfig{HashKey: []byte("another-key-0123456789")})
	if other.Hash("abc123") == e.Hash("abc123") {
		t.Error("hash does not depend on the key")
	}
	if e.Hash("") != 0 {
		t.Error("empty value must hash to 0 (no value)")
	}
}

func TestRedact(t *testing.T) {
	e := testEnricher(t)
	in := `{"client_ip":"203.0.113.9","request_cookie":"session=abc; x=1","url":"/a?token=T0K3N&x=1","note":"from 2001:db8:0:0:0:0:0:1"} Cookie: session=zzz`
	out := string(e.Redact([]byte(in)))
	for _, secret := range []string{"203.0.113.9", "session=abc", "T0K3N", "2001:db8", "zzz"} {
		if strings.Contains(out, secret) {
			t.Errorf("Redact kept %q: %s", secret, out)
		}
	}
	if !strings.Contains(out, `"url":"/a?token=[redacted:token]&x=1"`) || !strings.Contains(out, "x=1") {
		t.Errorf("Redact changed more than the secrets: %s", out)
	}
}

func TestFastlyState(t *testing.T) {
	for _, tt := range []struct {
		in        string
		want      string
		collapsed bool
	}{
		{"HIT", CacheHit, false}, {"HIT-WAIT", CacheHit, true}, {"HIT-STALE", CacheStale, false},
		{"HIT-SYNTH", CacheSynth, false}, {"MISS", CacheMiss, false}, {"MISS-WAIT", CacheMiss, true},
		{"MISS-CLUSTER", CacheMiss, false}, {"HIT-CLUSTER-WAIT", CacheHit, true}, {"MISS-REFRESH", CacheRevalidated, false},
		{"PASS", CachePass, false}, {"ERROR", CacheError, false}, {"BG-ERROR-STALE", CacheError, false},
		{"NONE", CacheNone, false}, {"WHATEVER", CacheUnknown, false},
	} {
		got, c := FastlyState(tt.in)
		if got != tt.want || c != tt.collapsed {
			t.Errorf("FastlyState(%q) = %s,%v want %s,%v", tt.in, got, c, tt.want, tt.collapsed)
		}
	}
}

func TestParseTime(t *testing.T) {
	want := time.Date(2026, 11, 20, 5, 6, 7, 0, time.UTC)
	for _, in := range []string{"2026-11-20T05:06:07Z", "2026-11-20T14:06:07+09:00", "2026-11-20T05:06:07+0000", "1795151167", "1795151167000", "1795151167000000", "1795151167000000000", "20/Nov/2026:05:06:07 +0000", "2026-11-20 05:06:07"} {
		got, err := ParseTime(in)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "yesterday", "-5", "2026-13-01T00:00:00Z"} {
		if _, err := ParseTime(in); err == nil {
			t.Errorf("ParseTime(%q) accepted", in)
		}
	}
}

// TestRedactorHashIsEnricherHash: [ip:HEX] in a dead letter is the
// client_ip_hash of a row of the same address.
func TestRedactorHashIsEnricherHash(t *testing.T) {
	e := testEnricher(t)
	for _, v := range []string{"192.0.2.1", "2001:db8::1", "session-value"} {
		if a, b := e.Hash(v), e.Redactor().Hash(v); a != b {
			t.Errorf("Hash(%q): enricher %x, redactor %x", v, a, b)
		}
	}
}

func TestPersonalSignals(t *testing.T) {
	for _, tt := range []struct {
		r    CDNRequest
		want string
	}{
		{CDNRequest{PathClass: "other"}, ""},
		{CDNRequest{PathClass: "personal"}, "class"},
		{CDNRequest{PathClass: "auth", CacheControl: "no-store", SetCookie: true, Vary: "Authorization", HasAuthorization: true}, "class,private,set_cookie,vary,authorization"},
		{CDNRequest{PathClass: "api", HasAuthorization: true, CacheControl: "s-maxage=10"}, ""},
		{CDNRequest{PathClass: "other", Vary: "Accept-Encoding"}, ""},
	} {
		if got := PersonalSignals(&tt.r).String(); got != tt.want {
			t.Errorf("PersonalSignals(%+v) = %q, want %q", tt.r, got, tt.want)
		}
	}
}
