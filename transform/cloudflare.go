package transform

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	json "github.com/goccy/go-json"
)

// flexString reads a JSON string, number or boolean as text; null gives "".
// Vendors differ (and change) in whether numbers are quoted.
type flexString string

// UnmarshalJSON implements json.Unmarshaler.
func (f *flexString) UnmarshalJSON(b []byte) error {
	s, err := scalarString(b)
	*f = flexString(s)
	return err
}

// cloudflareJSON holds the Logpush http_requests fields logpipe reads.
type cloudflareJSON struct {
	EdgeStartTimestamp        flexString        `json:"EdgeStartTimestamp"`
	EdgeEndTimestamp          flexString        `json:"EdgeEndTimestamp"`
	RayID                     string            `json:"RayID"`
	ZoneName                  string            `json:"ZoneName"`
	ZoneID                    flexString        `json:"ZoneID"`
	ClientIP                  string            `json:"ClientIP"`
	ClientCountry             string            `json:"ClientCountry"`
	ClientRequestHost         string            `json:"ClientRequestHost"`
	ClientRequestURI          string            `json:"ClientRequestURI"`
	ClientRequestMethod       string            `json:"ClientRequestMethod"`
	ClientRequestProtocol     string            `json:"ClientRequestProtocol"`
	ClientRequestScheme       string            `json:"ClientRequestScheme"`
	ClientRequestReferer      string            `json:"ClientRequestReferer"`
	ClientRequestUserAgent    string            `json:"ClientRequestUserAgent"`
	CacheCacheStatus          string            `json:"CacheCacheStatus"`
	EdgeResponseStatus        flexString        `json:"EdgeResponseStatus"`
	OriginResponseStatus      flexString        `json:"OriginResponseStatus"`
	EdgeResponseBytes         flexString        `json:"EdgeResponseBytes"`
	EdgeResponseContentType   string            `json:"EdgeResponseContentType"`
	EdgeColoCode              string            `json:"EdgeColoCode"`
	EdgeTimeToFirstByteMs     flexString        `json:"EdgeTimeToFirstByteMs"`
	OriginResponseDurationMs  flexString        `json:"OriginResponseDurationMs"`
	OriginResponseHTTPExpires string            `json:"OriginResponseHTTPExpires"`
	RequestHeaders            map[string]string `json:"RequestHeaders"`
	ResponseHeaders           map[string]string `json:"ResponseHeaders"`
	Cookies                   map[string]string `json:"Cookies"`
}

// CloudflareJSON parses Cloudflare Logpush http_requests lines (ndjson).
type CloudflareJSON struct {
	keys *keyMap // field_map; nil = the default keys
}

// Kind implements Parser.
func (CloudflareJSON) Kind() Kind { return KindCDN }

// Parse implements CDNParser.
func (p CloudflareJSON) Parse(line []byte, r *CDNRequest) error {
	var c cloudflareJSON
	if p.keys.mapped() {
		var err error
		if line, err = p.keys.rewrite(line); err != nil {
			return fmt.Errorf("cloudflare line: %w", err)
		}
	}
	if err := json.Unmarshal(line, &c); err != nil {
		return fmt.Errorf("cloudflare line is not a Logpush http_requests JSON object: %w", err)
	}
	if c.EdgeStartTimestamp == "" {
		return fmt.Errorf("cloudflare line has no %q", p.keys.keyFor("EdgeStartTimestamp"))
	}
	start, err := cloudflareTime(string(c.EdgeStartTimestamp))
	if err != nil {
		return fmt.Errorf("cloudflare %q: %w", p.keys.keyFor("EdgeStartTimestamp"), err)
	}
	st, ok := parseStatus(string(c.EdgeResponseStatus))
	if !ok {
		return fmt.Errorf("cloudflare %q %q is not an HTTP status", p.keys.keyFor("EdgeResponseStatus"), truncate(string(c.EdgeResponseStatus), 16))
	}
	r.Vendor = "cloudflare"
	r.Time = start
	r.Status = st
	r.OriginStatus, _ = parseStatus(string(c.OriginResponseStatus))
	r.RequestID = c.RayID
	r.Service = c.ZoneName
	if r.Service == "" {
		r.Service = string(c.ZoneID)
	}
	r.Host = strings.ToLower(c.ClientRequestHost)
	r.Method = c.ClientRequestMethod
	r.Scheme = strings.ToLower(c.ClientRequestScheme)
	r.Protocol = c.ClientRequestProtocol
	r.Path, r.Query = splitURI(c.ClientRequestURI)
	r.Referer = c.ClientRequestReferer
	r.UserAgent = c.ClientRequestUserAgent
	r.Country = strings.ToUpper(c.ClientCountry)
	r.CacheRaw = c.CacheCacheStatus
	r.CacheStatus = CloudflareCacheStatus(c.CacheCacheStatus)
	r.BytesSent = optUint(string(c.EdgeResponseBytes))
	r.ContentType = c.EdgeResponseContentType
	r.POP = c.EdgeColoCode
	r.OriginMs = optFloat(string(c.OriginResponseDurationMs))
	if end, err := cloudflareTime(string(c.EdgeEndTimestamp)); err == nil && !end.Before(start) {
		r.DurationMs = float64(end.Sub(start)) / float64(time.Millisecond)
	} else {
		r.DurationMs = optFloat(string(c.EdgeTimeToFirstByteMs))
	}
	r.CacheControl = header(c.ResponseHeaders, "cache-control")
	r.Expires = header(c.ResponseHeaders, "expires")
	if r.Expires == "" {
		r.Expires = c.OriginResponseHTTPExpires
	}
	r.Age = clampAge(header(c.ResponseHeaders, "age"))
	r.Vary = header(c.ResponseHeaders, "vary")
	r.SetCookie = header(c.ResponseHeaders, "set-cookie") != ""
	r.ETag = header(c.ResponseHeaders, "etag")
	r.Secret.ClientIP = c.ClientIP
	r.Secret.Authorization = header(c.RequestHeaders, "authorization")
	r.Secret.Cookie = header(c.RequestHeaders, "cookie")
	if r.Secret.Cookie == "" && len(c.Cookies) > 0 {
		r.Secret.Cookie = cookieHeader(c.Cookies)
	}
	return nil
}

// cloudflareTime reads EdgeStartTimestamp in any Logpush timestamp format:
// unixnano (the default), unix seconds, or rfc3339.
func cloudflareTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, fmt.Errorf("empty timestamp")
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		switch {
		case n <= 0:
		case n < 1e11:
			return time.Unix(n, 0).UTC(), nil
		case n < 1e14:
			return time.UnixMilli(n).UTC(), nil
		case n < 1e17:
			return time.UnixMicro(n).UTC(), nil
		default:
			return time.Unix(0, n).UTC(), nil
		}
		return time.Time{}, fmt.Errorf("epoch timestamp %d out of range", n)
	}
	return ParseTime(s)
}

// CloudflareCacheStatus normalises CacheCacheStatus: unknown, miss,
// expired, updating, stale, hit, ignored, bypass, revalidated, dynamic,
// stream_hit, deferred.
func CloudflareCacheStatus(s string) string {
	switch strings.ToLower(s) {
	case "hit", "stream_hit":
		return CacheHit
	case "miss":
		return CacheMiss
	case "expired":
		return CacheExpired
	case "updating":
		return CacheUpdating
	case "stale":
		return CacheStale
	case "revalidated":
		return CacheRevalidated
	case "bypass", "dynamic", "ignored":
		return CachePass
	case "unknown", "none", "":
		return CacheNone
	}
	return CacheUnknown
}

// header looks a header up in a custom-field map, ignoring case.
func header(h map[string]string, name string) string {
	if v, ok := h[name]; ok {
		return v
	}
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

// cookieHeader rebuilds a Cookie header from Cloudflare's Cookies field.
func cookieHeader(m map[string]string) string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for i, k := range names {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(m[k])
	}
	return b.String()
}
