package transform

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/logpipe/logpipe/transform/redact"
)

// EnrichConfig configures an Enricher.
type EnrichConfig struct {
	HashKey         []byte   // key of the keyed hash; at least 16 bytes
	SessionCookies  []string // cookie names that carry a session
	PathClasses     []PathClassRule
	DropQueryParams []string
	PathTemplates   []PathTemplateRule
	Redact          RedactRules // the redaction pass (redact.go)
}

// PathClassRule assigns Class to paths matching any pattern: a prefix, or
// a prefix ending in "*" (the same thing, written explicitly).
type PathClassRule struct {
	Class    string
	Patterns []string
}

// PathTemplateRule is a user rule for path templates, tried before the
// built-in id rules.
type PathTemplateRule struct {
	Match   string
	Replace string
}

// Enricher adds derived fields to records. It is not safe for concurrent
// use: give each goroutine its own (New is cheap).
type Enricher struct {
	// Caches of derived values: user agents, paths and session values
	// repeat a lot, and HMAC, templating and substring scans cost more
	// than a map lookup. Each is emptied when it reaches cacheSize.
	uaCache   map[string]uaInfo
	pathCache map[string]pathInfo
	hashCache map[string]uint64

	mac       hash.Hash
	sum       []byte
	cookies   map[string]bool
	classes   []PathClassRule
	drop      map[string]bool
	templates []compiledTemplate
	red       *redact.Redactor
	noRaw     bool
	redCache  map[string]string  // redacted low-cardinality values (redact.go), redact.Text mode
	redLast   [redFields]redMemo // each such field's last value (redact.go)
	expires   expiresMemo
}

type compiledTemplate struct {
	re      *regexp.Regexp
	replace string
}

// NewEnricher checks cfg and returns an Enricher.
func NewEnricher(cfg EnrichConfig) (*Enricher, error) {
	if len(cfg.HashKey) < 16 {
		return nil, fmt.Errorf("hash key has %d bytes, want at least 16", len(cfg.HashKey))
	}
	if errs := cfg.Check(); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	e := &Enricher{
		mac:       hmac.New(sha256.New, cfg.HashKey),
		uaCache:   map[string]uaInfo{},
		pathCache: map[string]pathInfo{},
		hashCache: map[string]uint64{},
		cookies:   map[string]bool{},
		drop:      map[string]bool{},
		classes:   cfg.PathClasses,
	}
	for _, c := range cfg.SessionCookies {
		e.cookies[strings.ToLower(c)] = true
	}
	for _, p := range cfg.DropQueryParams {
		e.drop[strings.ToLower(p)] = true
	}
	red, err := newRedactor(cfg)
	if err != nil {
		return nil, err
	}
	e.red, e.noRaw, e.redCache = red, cfg.Redact.NoRawDeadLetters, map[string]string{}
	for _, t := range cfg.PathTemplates {
		e.templates = append(e.templates, compiledTemplate{regexp.MustCompile(t.Match), t.Replace}) // Check compiled it
	}
	return e, nil
}

const cacheSize = 1 << 16

// pathInfo is what the Enricher derives from a path, looked up once per
// record: the template and class (from the clear path), and the path and
// template as stored (redacted: see redactCDN).
type pathInfo struct{ template, class, redPath, redTemplate string }

// uaInfo is what the Enricher derives from a User-Agent, looked up once
// per record: its class and the value as stored (redacted).
type uaInfo struct{ class, red string }

// Hash returns the keyed hash (HMAC-SHA256, first 8 bytes) of s; 0 for "".
func (e *Enricher) Hash(s string) uint64 {
	if s == "" {
		return 0
	}
	if h, ok := e.hashCache[s]; ok {
		return h
	}
	e.mac.Reset()
	e.mac.Write([]byte(s))
	e.sum = e.mac.Sum(e.sum[:0])
	h := binary.BigEndian.Uint64(e.sum)
	if len(e.hashCache) >= cacheSize {
		clear(e.hashCache)
	}
	e.hashCache[strings.Clone(s)] = h // s may alias a buffer that is reused
	return h
}

func (e *Enricher) uaInfo(ua string) uaInfo {
	if ui, ok := e.uaCache[ua]; ok {
		return ui
	}
	key := strings.Clone(ua) // ua may alias a buffer that is reused
	ui := uaInfo{class: UAClass(key), red: key}
	if key != "" {
		ui.red = e.red.StringMode(key, redact.UserAgent)
	}
	if len(e.uaCache) >= cacheSize {
		clear(e.uaCache)
	}
	e.uaCache[key] = ui
	return ui
}

func (e *Enricher) pathInfo(path string) pathInfo {
	if pi, ok := e.pathCache[path]; ok {
		return pi
	}
	key := strings.Clone(path) // path may alias a buffer that is reused
	pi := pathInfo{template: e.Template(key), class: e.Class(key), redPath: key}
	if key != "" {
		pi.redPath = e.red.String(key)
	}
	pi.redTemplate = e.redactTemplate(pi.template, key, pi.redPath)
	if len(e.pathCache) >= cacheSize {
		clear(e.pathCache)
	}
	e.pathCache[key] = pi
	return pi
}

// Job normalises a job event in place.
func (e *Enricher) Job(ev *JobEvent) {
	if ev.Attempt == 0 {
		ev.Attempt = 1
	}
	e.redactJob(ev)
}

// CDN derives the enriched fields of r and replaces its secrets by hashes.
func (e *Enricher) CDN(r *CDNRequest) {
	if r.Query != "" {
		r.Query = e.cleanQuery(r.Query)
	}
	pi := e.pathInfo(r.Path)
	r.PathTemplate, r.PathClass = pi.template, pi.class
	ui := e.uaInfo(r.UserAgent)
	if r.UAClass == "" {
		r.UAClass = ui.class
	}
	r.Method = strings.ToUpper(r.Method)

	// Hash the secrets, then forget them.
	if r.Secret.Cookie != "" {
		if v := e.sessionCookie(r.Secret.Cookie); v != "" {
			r.HasSessionCookie = true
			r.SessionHash = e.Hash(v)
		}
	}
	if r.Secret.Authorization != "" {
		r.HasAuthorization = true
		if r.SessionHash == 0 {
			r.SessionHash = e.Hash(r.Secret.Authorization)
		}
	}
	if r.Secret.ClientIP != "" {
		r.ClientIPHash = e.Hash(r.Secret.ClientIP)
	}
	r.Secret = Secrets{}

	r.FromCache = FromCache(r.CacheStatus)
	shared := r.FromCache || r.Collapsed
	cc := strings.ToLower(r.CacheControl)
	r.FlagPersonalCached = shared && PersonalClass(r.PathClass)
	r.FlagSetCookieCached = shared && r.SetCookie
	r.FlagPrivateCached = shared && (strings.Contains(cc, "private") || strings.Contains(cc, "no-store"))
	// A cached public page served to a logged-in browser (which sends its
	// session cookie on every request) is what a CDN is for: only an
	// object with a personal signal counts (docs/operations.md, "What
	// counts as a leak").
	r.FlagAuthCached = shared && (r.HasSessionCookie || r.HasAuthorization) && PersonalSignals(r) != 0 && !isStatic(r)
	r.FlagTTLZero = e.ttlZero(cc, r.Expires, r.Time)
	e.redactCDNWith(r, &pi, &ui)
}

// PersonalClass reports whether a configured path class marks personal
// objects: "personal" or "auth".
func PersonalClass(class string) bool { return class == "personal" || class == "auth" }

// Signal is one reason, visible in a single log line, to take a response
// as generated for one session.
type Signal uint8

// Signals a single row can carry. Evidence that needs several rows (the
// origin returned different ETags or sizes to different sessions for the
// same URL) is gathered by the leak detector and the catalogue queries.
const (
	SignalClass         Signal = 1 << iota // path configured personal or auth
	SignalPrivate                          // Cache-Control private or no-store
	SignalSetCookie                        // response set a cookie
	SignalVary                             // Vary: Cookie or Authorization
	SignalAuthorization                    // request carried Authorization, response not explicitly public (RFC 9111 3.5)
)

// PersonalSignals returns the row-level signals that r's response was
// personal (0 = none: a public object as far as this line tells).
func PersonalSignals(r *CDNRequest) Signal {
	var s Signal
	if PersonalClass(r.PathClass) {
		s |= SignalClass
	}
	cc := r.CacheControl
	if containsFold(cc, "private") || containsFold(cc, "no-store") {
		s |= SignalPrivate
	}
	if r.SetCookie {
		s |= SignalSetCookie
	}
	if containsFold(r.Vary, "cookie") || containsFold(r.Vary, "authorization") {
		s |= SignalVary
	}
	if r.HasAuthorization && !containsFold(cc, "public") && !containsFold(cc, "s-maxage") {
		s |= SignalAuthorization
	}
	return s
}

// containsFold reports whether s contains the lower-case ASCII word sub,
// ignoring ASCII case, without allocating.
func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		j := 0
		for j < len(sub) && s[i+j]|0x20 == sub[j] {
			j++
		}
		if j == len(sub) {
			return true
		}
	}
	return false
}

// String lists the signals: "class,private,set_cookie,vary,authorization".
func (s Signal) String() string {
	var out []string
	for i, n := range []string{"class", "private", "set_cookie", "vary", "authorization"} {
		if s&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return strings.Join(out, ",")
}

// sessionCookie returns the value of the first session cookie in a Cookie
// header, or "".
func (e *Enricher) sessionCookie(header string) string {
	for header != "" {
		var part string
		part, header, _ = strings.Cut(header, ";")
		name, value, ok := strings.Cut(strings.TrimSpace(part), "=")
		if ok && value != "" && e.cookies[strings.ToLower(name)] {
			return value
		}
	}
	return ""
}

// cleanQuery removes the configured parameters from a query string, keeping
// the order and encoding of the rest.
func (e *Enricher) cleanQuery(q string) string {
	if len(e.drop) == 0 {
		return q
	}
	// Nothing to drop and no empty parameter at either end (which the
	// loop below leaves out): q as it is, without building a copy.
	if q[0] != '&' && q[len(q)-1] != '&' && !e.dropsAny(q) {
		return q
	}
	var b strings.Builder
	for q != "" {
		var part string
		part, q, _ = strings.Cut(q, "&")
		name, _, _ := strings.Cut(part, "=")
		if n, err := url.QueryUnescape(name); err == nil {
			name = n
		}
		if e.drop[strings.ToLower(name)] {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(part)
	}
	return b.String()
}

// dropsAny reports whether cleanQuery would remove a parameter of q.
func (e *Enricher) dropsAny(q string) bool {
	for q != "" {
		var part string
		part, q, _ = strings.Cut(q, "&")
		name, _, _ := strings.Cut(part, "=")
		if n, err := url.QueryUnescape(name); err == nil {
			name = n
		}
		if e.drop[strings.ToLower(name)] {
			return true
		}
	}
	return false
}

// Class returns the configured class of a path: the first rule with a
// matching pattern; otherwise "static" for asset extensions, else "other".
func (e *Enricher) Class(path string) string {
	lp := strings.ToLower(path)
	for _, c := range e.classes {
		for _, p := range c.Patterns {
			if strings.HasPrefix(lp, strings.ToLower(strings.TrimSuffix(p, "*"))) {
				return c.Class
			}
		}
	}
	if staticExt(lp) {
		return "static"
	}
	return "other"
}

// Template turns a path into its template: user rules first, then each
// segment that looks like an id (numbers, UUIDs, hex, vendor-style ids
// like m12345678901, long tokens, e-mail addresses) becomes :id, :uuid,
// :hex, :token or :email.
func (e *Enricher) Template(path string) string {
	for _, t := range e.templates {
		if t.re.MatchString(path) {
			return t.re.ReplaceAllString(path, t.replace)
		}
	}
	return TemplatePath(path)
}

// TemplatePath applies the built-in id rules of Enricher.Template.
func TemplatePath(path string) string {
	if path == "" {
		return "/"
	}
	var b strings.Builder
	b.Grow(len(path))
	for i := 0; i < len(path); {
		if path[i] == '/' {
			b.WriteByte('/')
			i++
			continue
		}
		j := strings.IndexByte(path[i:], '/')
		if j < 0 {
			j = len(path)
		} else {
			j += i
		}
		b.WriteString(segmentTemplate(path[i:j]))
		i = j
	}
	return b.String()
}

func segmentTemplate(seg string) string {
	if seg == "" {
		return seg
	}
	if strings.Contains(seg, "@") && strings.Contains(seg, ".") {
		return ":email"
	}
	// Keep a file extension: /img/123.png -> /img/:id.png
	base, ext := seg, ""
	if k := strings.LastIndexByte(seg, '.'); k > 0 && len(seg)-k <= 6 && isAlpha(seg[k+1:]) {
		base, ext = seg[:k], seg[k:]
	}
	switch {
	case allDigits(base):
		return ":id" + ext
	case isUUID(base):
		return ":uuid" + ext
	case len(base) >= 16 && allHex(base):
		return ":hex" + ext
	case vendorID(base):
		return ":id" + ext
	case len(base) >= 20 && tokenLike(base):
		return ":token" + ext
	}
	return seg
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isAlpha(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20
		if c < 'a' || c > 'z' {
			if s[i] < '0' || s[i] > '9' {
				return false
			}
		}
	}
	return true
}

func allHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if s[i] != '-' {
				return false
			}
			continue
		}
		if !allHex(s[i : i+1]) {
			return false
		}
	}
	return true
}

// vendorID matches a short letter prefix followed by at least 6 digits
// (m12345678901, u123456, sku_1234567).
func vendorID(s string) bool {
	i := 0
	for i < len(s) && i < 4 && (s[i]|0x20 >= 'a' && s[i]|0x20 <= 'z') {
		i++
	}
	if i < len(s) && (s[i] == '_' || s[i] == '-') && i > 0 {
		i++
	}
	return i > 0 && len(s)-i >= 6 && allDigits(s[i:])
}

// tokenLike matches long mixed letter-and-digit strings (base64/base62).
func tokenLike(s string) bool {
	var letters, digits int
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c|0x20 >= 'a' && c|0x20 <= 'z':
			letters++
		case c == '-' || c == '_' || c == '=' || c == '+' || c == '~':
		default:
			return false
		}
	}
	return letters > 0 && digits > 0
}

var staticExts = map[string]bool{
	"css": true, "js": true, "mjs": true, "png": true, "jpg": true, "jpeg": true, "gif": true,
	"webp": true, "avif": true, "svg": true, "ico": true, "woff": true, "woff2": true, "ttf": true,
	"otf": true, "eot": true, "map": true, "mp4": true, "webm": true, "mp3": true, "pdf": true,
	"zip": true, "txt": true, "xml": true, "wasm": true,
}

func staticExt(lowerPath string) bool {
	k := strings.LastIndexByte(lowerPath, '.')
	if k < 0 || strings.IndexByte(lowerPath[k:], '/') >= 0 {
		return false
	}
	return staticExts[lowerPath[k+1:]]
}

// isStatic reports whether a response is a static asset: a path configured
// personal or auth never is; one classed "static" (configured or by
// extension) is, as are asset content types; but a static-looking path
// answered with HTML or JSON is not (the web cache deception shape).
func isStatic(r *CDNRequest) bool {
	if PersonalClass(r.PathClass) {
		return false
	}
	ct := strings.ToLower(r.ContentType)
	if strings.Contains(ct, "html") || strings.Contains(ct, "json") {
		return false
	}
	if r.PathClass == "static" || staticExt(strings.ToLower(r.Path)) {
		return true
	}
	return strings.HasPrefix(ct, "image/") || strings.HasPrefix(ct, "font/") ||
		strings.Contains(ct, "css") || strings.Contains(ct, "javascript")
}

// ttlZero reports an Expires in the past (relative to the request) with no
// max-age or s-maxage in Cache-Control: the shape that a CDN may read as
// "cache for 0 seconds" and then collapse concurrent requests onto.
func (e *Enricher) ttlZero(lowerCC, expires string, at time.Time) bool {
	if expires == "" || strings.Contains(lowerCC, "max-age") {
		return false
	}
	if expires == "0" || expires == "-1" {
		return true
	}
	t, ok := e.expires.parse(expires)
	return ok && !t.After(at)
}

// expiresMemo remembers the last Expires value parsed: sites send the
// same fixed date in the past on every page ("Thu, 19 Nov 1981 08:52:00
// GMT"), and a comparison costs less than time.Parse. The value is
// copied (it may alias a buffer that is reused), without allocating.
type expiresMemo struct {
	buf [40]byte
	n   int // len of the value in buf; 0 = none
	t   time.Time
	ok  bool
}

func (m *expiresMemo) parse(s string) (time.Time, bool) {
	if m.n > 0 && len(s) == m.n && string(m.buf[:m.n]) == s {
		return m.t, m.ok
	}
	t, err := time.Parse(time.RFC1123, s)
	if len(s) <= len(m.buf) {
		m.n = copy(m.buf[:], s)
		m.t, m.ok = t, err == nil
	}
	return t, err == nil
}

// UAClass classifies a User-Agent: monitor, bot, tool, app, browser or
// unknown, by substrings, without a user-agent database.
func UAClass(ua string) string {
	if ua == "" || ua == "-" {
		return "unknown"
	}
	l := strings.ToLower(ua)
	for _, m := range uaMonitors {
		if strings.Contains(l, m) {
			return "monitor"
		}
	}
	for _, m := range uaBots {
		if strings.Contains(l, m) {
			return "bot"
		}
	}
	for _, m := range uaTools {
		if strings.Contains(l, m) {
			return "tool"
		}
	}
	for _, m := range uaApps {
		if strings.Contains(l, m) {
			return "app"
		}
	}
	if strings.HasPrefix(l, "mozilla/") || strings.HasPrefix(l, "opera/") {
		return "browser"
	}
	return "unknown"
}

var (
	uaMonitors = []string{"pingdom", "uptimerobot", "statuscake", "site24x7", "datadogsynthetics", "newrelicpinger", "kube-probe", "elb-healthchecker", "googlehc", "healthcheck", "nagios", "zabbix", "catchpoint", "synthetic"}
	uaBots     = []string{"bot", "crawl", "spider", "slurp", "facebookexternalhit", "bingpreview", "mediapartners", "ia_archiver", "yandex", "baiduspider", "headlesschrome", "lighthouse"}
	uaTools    = []string{"curl/", "wget/", "python-requests", "python-urllib", "go-http-client", "java/", "okhttp/3.0-tool", "httpie", "postmanruntime", "insomnia", "axios/", "node-fetch", "libwww-perl", "apache-httpclient"}
	uaApps     = []string{"okhttp", "cfnetwork", "dalvik", "alamofire", "darwin/", "android", "iphone; ios", "flutter", "reactnative", "electron"}
)
