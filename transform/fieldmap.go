package transform

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	json "github.com/goccy/go-json"
)

// A field map tells a JSON-shaped CDN format (fastly-json, cloudflare-json,
// akamai-datastream2) which of the user's keys holds which field:
// canonical name (cache_status, bytes, duration, ...) to the user's key,
// with an optional unit after a colon when the user's value is not in the
// unit the format expects ("duration=time_elapsed:ms",
// "time=ts:rfc3339"). The same syntax as the job formats' field_map.

// cdnKey is one field a JSON CDN format reads: its canonical name, the
// key the format reads it from by default, and the unit of that key's
// value (unitNone for text).
type cdnKey struct {
	name string
	key  string // default key; "Outer.inner" for a key inside an object
	unit string
	doc  string
}

// Units a field_map value may declare after a colon.
const (
	unitNone = ""
	unitUs   = "us"
	unitMs   = "ms"
	unitS    = "s"
	unitNs   = "ns"
	// unitTime is a timestamp read in any form (RFC 3339 or epoch by
	// magnitude); unitEpochS one that must be epoch seconds.
	unitTime   = "time"
	unitEpochS = "epoch_s"
	unitRFC    = "rfc3339"
)

// fastlyKeys are the keys of logpipe's recommended Fastly JSON format.
var fastlyKeys = []cdnKey{
	{"time", "timestamp", unitTime, "request start"},
	{"time_start_msec", "time_start_msec", unitTime, "request start, epoch ms (preferred over time)"},
	{"client_ip", "client_ip", unitNone, ""},
	{"country", "geo_country_code", unitNone, ""},
	{"host", "host", unitNone, ""},
	{"url", "url", unitNone, "path and query"},
	{"method", "request_method", unitNone, ""},
	{"protocol", "request_protocol", unitNone, ""},
	{"referer", "request_referer", unitNone, ""},
	{"user_agent", "request_user_agent", unitNone, ""},
	{"cookie", "request_cookie", unitNone, "request Cookie header"},
	{"authorization", "request_authorization", unitNone, ""},
	{"request_id", "request_id", unitNone, ""},
	{"cache_status", "response_state", unitNone, "fastly_info.state"},
	{"status", "response_status", unitNone, ""},
	{"bytes", "response_body_size", unitNone, ""},
	{"cache_control", "response_cache_control", unitNone, ""},
	{"expires", "response_expires", unitNone, ""},
	{"age", "response_age", unitNone, ""},
	{"vary", "response_vary", unitNone, ""},
	{"set_cookie", "response_set_cookie", unitNone, ""},
	{"content_type", "response_content_type", unitNone, ""},
	{"etag", "response_etag", unitNone, ""},
	{"duration", "time_elapsed_usec", unitUs, ""},
	{"origin_status", "origin_status", unitNone, ""},
	{"origin_ms", "origin_ttfb_ms", unitMs, ""},
	{"server", "fastly_server", unitNone, ""},
	{"pop", "pop", unitNone, ""},
	{"service", "service_id", unitNone, ""},
	{"config_version", "service_version", unitNone, ""},
}

// cloudflareKeys are the Logpush http_requests fields logpipe reads.
var cloudflareKeys = []cdnKey{
	{"time", "EdgeStartTimestamp", unitTime, ""},
	{"end_time", "EdgeEndTimestamp", unitTime, ""},
	{"request_id", "RayID", unitNone, ""},
	{"service", "ZoneName", unitNone, ""},
	{"zone_id", "ZoneID", unitNone, ""},
	{"client_ip", "ClientIP", unitNone, ""},
	{"country", "ClientCountry", unitNone, ""},
	{"host", "ClientRequestHost", unitNone, ""},
	{"url", "ClientRequestURI", unitNone, "path and query"},
	{"method", "ClientRequestMethod", unitNone, ""},
	{"protocol", "ClientRequestProtocol", unitNone, ""},
	{"scheme", "ClientRequestScheme", unitNone, ""},
	{"referer", "ClientRequestReferer", unitNone, ""},
	{"user_agent", "ClientRequestUserAgent", unitNone, ""},
	{"cache_status", "CacheCacheStatus", unitNone, ""},
	{"status", "EdgeResponseStatus", unitNone, ""},
	{"origin_status", "OriginResponseStatus", unitNone, ""},
	{"bytes", "EdgeResponseBytes", unitNone, ""},
	{"content_type", "EdgeResponseContentType", unitNone, ""},
	{"pop", "EdgeColoCode", unitNone, ""},
	{"duration", "EdgeTimeToFirstByteMs", unitMs, "used without end_time"},
	{"origin_ms", "OriginResponseDurationMs", unitMs, ""},
	{"expires", "OriginResponseHTTPExpires", unitNone, ""},
	{"cache_control", "ResponseHeaders.cache-control", unitNone, ""},
	{"set_cookie", "ResponseHeaders.set-cookie", unitNone, ""},
	{"age", "ResponseHeaders.age", unitNone, ""},
	{"vary", "ResponseHeaders.vary", unitNone, ""},
	{"etag", "ResponseHeaders.etag", unitNone, ""},
	{"cookie", "RequestHeaders.cookie", unitNone, ""},
	{"authorization", "RequestHeaders.authorization", unitNone, ""},
	{"cookies", "Cookies", unitNone, "object cookie name -> value"},
	{"request_headers", "RequestHeaders", unitNone, "object"},
	{"response_headers", "ResponseHeaders", unitNone, "object"},
}

// akamaiKeys are the DataStream 2 fields logpipe reads. The response
// headers are no DataStream field: map a custom field to them.
var akamaiKeys = []cdnKey{
	{"time", "reqTimeSec", unitEpochS, ""},
	{"status", "statusCode", unitNone, ""},
	{"service", "cp", unitNone, ""},
	{"request_id", "reqId", unitNone, ""},
	{"host", "reqHost", unitNone, ""},
	{"method", "reqMethod", unitNone, ""},
	{"path", "reqPath", unitNone, ""},
	{"query", "queryStr", unitNone, ""},
	{"scheme", "proto", unitNone, ""},
	{"cache_status", "cacheStatus", unitNone, "1 = served from cache"},
	{"cacheable", "cacheable", unitNone, ""},
	{"bytes", "totalBytes", unitNone, ""},
	{"body_bytes", "bytes", unitNone, "used without bytes"},
	{"duration", "turnAroundTimeMSec", unitMs, ""},
	{"transfer_ms", "transferTimeMSec", unitMs, "added to duration"},
	{"content_type", "rspContentType", unitNone, ""},
	{"user_agent", "UA", unitNone, ""},
	{"referer", "referer", unitNone, ""},
	{"client_ip", "cliIP", unitNone, ""},
	{"cookie", "cookie", unitNone, ""},
	{"country", "country", unitNone, ""},
	{"pop", "edgeIP", unitNone, ""},
	{"error_code", "errorCode", unitNone, ""},
	{"cache_control", "rspCacheControl", unitNone, "not a DataStream field: map a custom field"},
	{"set_cookie", "rspSetCookie", unitNone, "not a DataStream field: map a custom field"},
	{"expires", "rspExpires", unitNone, "not a DataStream field: map a custom field"},
	{"origin_ms", "originTimeMSec", unitMs, "not a DataStream field: map a custom field"},
}

// keysOf returns a format's key table, nil for formats without one.
func keysOf(format string) []cdnKey {
	switch format {
	case "fastly-json":
		return fastlyKeys
	case "cloudflare-json":
		return cloudflareKeys
	case "akamai-datastream2":
		return akamaiKeys
	}
	return nil
}

// FieldMapNames lists the canonical names a format's field_map may use,
// nil for formats that take no field_map.
func FieldMapNames(format string) []string {
	if format == "job-json" || format == "job-logfmt" {
		return JobFieldNames()
	}
	var names []string
	for _, k := range keysOf(format) {
		names = append(names, k.name)
	}
	return names
}

// DefaultKeys returns a JSON CDN format's keys by canonical name.
func DefaultKeys(format string) map[string]string {
	ks := keysOf(format)
	if ks == nil {
		return nil
	}
	m := make(map[string]string, len(ks))
	for _, k := range ks {
		m[k.name] = k.key
	}
	return m
}

// keyMap is a compiled field map: the user's keys renamed to the keys the
// format's parser reads, with their values converted.
type keyMap struct {
	format string
	// rename maps a user's key to the format's key it stands for.
	rename map[string]renamed
	// drop are default keys another key now stands for: a line that has
	// both must not let the default one win.
	drop map[string]bool
	// read maps every key the parser reads (after mapping) to its
	// canonical name, for coverage reports.
	read map[string]string
	// durScale and originScale turn the user's unit of Fastly's
	// time_elapsed_usec and origin_ttfb_ms into the expected one on the
	// fast path (0 = not mapped with a unit).
	durScale, originScale float64
}

type renamed struct {
	key   string // the format's key; "Outer.inner" inside an object
	name  string // canonical name
	from  string // unit the user declared; "" = as the format expects
	want  string // unit the format expects
	outer string // "Outer" for "Outer.inner"
	inner string
	// scaled: a duration in another unit that Fastly's fast path reads
	// as it is and scales afterwards (keyMap.durScale, originScale).
	scaled bool
}

// converts reports whether values need converting (the fast path then
// leaves the line to the general one, unless it can scale the value
// afterwards).
func (r renamed) converts() bool {
	return r.from != "" && r.from != r.want || r.outer != ""
}

func isDurationUnit(u string) bool { return u == unitUs || u == unitMs || u == unitS || u == unitNs }

// scales returns the factors the fast path applies to Fastly's duration
// and origin time (1 when not mapped with a unit).
func (m *keyMap) scales() (dur, origin float64) {
	dur, origin = 1, 1
	if m == nil {
		return
	}
	if m.durScale != 0 {
		dur = m.durScale
	}
	if m.originScale != 0 {
		origin = m.originScale
	}
	return
}

// scaledValuesOK reports whether the values the fast path will scale are
// numbers or absent; anything else goes to the general path, which
// rejects the line naming the key, so that both paths agree.
func (m *keyMap) scaledValuesOK(f *fastlyJSON) bool {
	if m == nil {
		return true
	}
	ok := func(raw []byte) bool {
		s, err := scalarString(raw)
		if err != nil {
			return false
		}
		if s == "" || s == "-" || s == "(null)" {
			return true
		}
		v, err := strconv.ParseFloat(s, 64)
		return err == nil && !math.IsNaN(v)
	}
	return (m.durScale == 0 || ok(f.ElapsedUsec)) && (m.originScale == 0 || ok(f.OriginMs))
}

// newKeyMap compiles fieldMap for format; an empty fieldMap gives the
// default keys (nothing renamed).
func newKeyMap(format string, fieldMap map[string]string) (*keyMap, error) {
	ks := keysOf(format)
	m := &keyMap{format: format, read: map[string]string{}}
	for _, k := range ks {
		outer, _, nested := strings.Cut(k.key, ".")
		if nested {
			// "ResponseHeaders.cache-control" names where the field is
			// read; the object itself counts as read.
			m.read[k.key] = k.name
			if _, ok := m.read[outer]; !ok {
				m.read[outer] = outer
			}
			continue
		}
		m.read[outer] = k.name
	}
	if len(fieldMap) == 0 {
		return m, nil
	}
	m.rename = map[string]renamed{}
	m.drop = map[string]bool{}
	for _, name := range sortedKeys(fieldMap) {
		val := fieldMap[name]
		var spec *cdnKey
		for i := range ks {
			// The format's own key names are accepted as names too.
			if ks[i].name == name || ks[i].key == name {
				spec = &ks[i]
				break
			}
		}
		if spec == nil {
			return nil, fmt.Errorf("field_map: unknown field %q for format %s (known: %s)", name, format, strings.Join(FieldMapNames(format), ", "))
		}
		key, unit := splitUnit(val)
		if key == "" {
			return nil, fmt.Errorf("field_map: field %q has an empty key", name)
		}
		if err := checkUnit(spec, unit); err != nil {
			return nil, fmt.Errorf("field_map: %s=%s: %w", name, val, err)
		}
		if prev, ok := m.rename[key]; ok {
			return nil, fmt.Errorf("field_map: key %q is mapped to both %s and %s", key, prev.name, spec.name)
		}
		r := renamed{key: spec.key, name: spec.name, from: unit, want: spec.unit}
		if o, in, ok := strings.Cut(spec.key, "."); ok {
			r.outer, r.inner = o, in
		}
		if format == "fastly-json" && unit != "" && unit != spec.unit && isDurationUnit(unit) && isDurationUnit(spec.unit) {
			scale := float64(unitNanos(unit)) / float64(unitNanos(spec.unit))
			switch spec.key {
			case "time_elapsed_usec":
				r.scaled, m.durScale = true, scale
			case "origin_ttfb_ms":
				r.scaled, m.originScale = true, scale
			}
		}
		if key != spec.key {
			m.rename[key] = r
			outer, _, _ := strings.Cut(spec.key, ".")
			if r.outer == "" {
				m.drop[outer] = true
				delete(m.read, outer)
			}
		}
		m.read[key] = spec.name
	}
	// A key renamed away is no longer dropped when another field's
	// default key happens to have its name.
	for k := range m.rename {
		delete(m.drop, k)
	}
	if len(m.rename) == 0 {
		m.rename, m.drop = nil, nil
	}
	return m, nil
}

// splitUnit cuts "key:unit" when unit is a known unit.
func splitUnit(v string) (key, unit string) {
	if i := strings.LastIndexByte(v, ':'); i > 0 {
		switch u := v[i+1:]; u {
		case unitUs, unitMs, unitS, unitNs, unitRFC, "µs":
			if u == "µs" {
				u = unitUs
			}
			return v[:i], u
		}
	}
	return v, ""
}

func checkUnit(spec *cdnKey, unit string) error {
	if unit == "" {
		return nil
	}
	switch spec.unit {
	case unitUs, unitMs, unitS:
		if unit == unitRFC {
			return fmt.Errorf("%s is a duration: unit us, ms or s", spec.name)
		}
		return nil
	case unitTime, unitEpochS:
		return nil
	}
	return fmt.Errorf("%s takes no unit (units are for durations and times)", spec.name)
}

// ReadKeys returns the top-level keys a JSON CDN parser reads, each with
// the canonical name it stands for.
func ReadKeys(p Parser) map[string]string {
	var m *keyMap
	var format string
	switch p := p.(type) {
	case FastlyJSON:
		m, format = p.keys, "fastly-json"
	case CloudflareJSON:
		m, format = p.keys, "cloudflare-json"
	case AkamaiDS2:
		m, format = p.keys, "akamai-datastream2"
	default:
		return nil
	}
	if m == nil {
		m, _ = newKeyMap(format, nil)
	}
	return m.read
}

// keyFor names the key a line holds a default key's value under, for
// error messages.
func (m *keyMap) keyFor(key string) string {
	if m == nil {
		return key
	}
	for k, r := range m.rename {
		if r.key == key {
			return k
		}
	}
	return key
}

// mapped reports whether the key map renames anything.
func (m *keyMap) mapped() bool { return m != nil && m.rename != nil }

// rewrite renames the line's keys to the format's and converts their
// values: the general path for a mapped key set.
func (m *keyMap) rewrite(line []byte) ([]byte, error) {
	var in map[string]json.RawMessage
	if err := json.Unmarshal(line, &in); err != nil {
		return nil, err
	}
	out := make(map[string]json.RawMessage, len(in))
	for k, v := range in {
		if _, ok := m.rename[k]; ok || m.drop[k] {
			continue
		}
		out[k] = v
	}
	for _, k := range sortedKeys(in) {
		r, ok := m.rename[k]
		if !ok {
			continue
		}
		v, err := convertRaw(in[k], r.from, r.want)
		if err != nil {
			return nil, fmt.Errorf("%q (field_map %s): %w", k, r.name, err)
		}
		if r.outer == "" {
			out[r.key] = v
			continue
		}
		obj := map[string]json.RawMessage{}
		if prev, ok := out[r.outer]; ok {
			json.Unmarshal(prev, &obj)
		}
		obj[r.inner] = v
		b, err := json.Marshal(obj)
		if err != nil {
			return nil, err
		}
		out[r.outer] = b
	}
	return json.Marshal(out)
}

// convertRaw converts a JSON value from the declared unit to the one the
// format expects.
func convertRaw(raw json.RawMessage, from, want string) (json.RawMessage, error) {
	if from == "" || from == want {
		return raw, nil
	}
	s, err := scalarString(raw)
	if err != nil {
		return nil, err
	}
	if s == "" || s == "-" || s == "(null)" {
		return json.RawMessage("null"), nil
	}
	switch want {
	case unitUs, unitMs, unitS:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) {
			return nil, fmt.Errorf("%q is not a number of %s", truncate(s, 32), from)
		}
		// The same factor as Fastly's fast path (keyMap.durScale), so
		// that both paths give the same value.
		f *= float64(unitNanos(from)) / float64(unitNanos(want))
		return json.RawMessage(strconv.FormatFloat(f, 'f', -1, 64)), nil
	case unitTime, unitEpochS:
		var t time.Time
		if from == unitRFC {
			if t, err = ParseTime(s); err != nil {
				return nil, err
			}
		} else {
			if n, err := strconv.ParseInt(s, 10, 64); err == nil && n > 0 && n < math.MaxInt64/unitNanos(from) {
				t = time.Unix(0, n*unitNanos(from)).UTC()
			} else {
				f, err := strconv.ParseFloat(s, 64)
				if err != nil || f <= 0 || f > 1e19 || math.IsNaN(f) {
					return nil, fmt.Errorf("%q is not epoch %s", truncate(s, 32), from)
				}
				t = time.Unix(0, int64(f*float64(unitNanos(from)))).UTC()
			}
		}
		if want == unitEpochS {
			return json.RawMessage(fmt.Sprintf(`"%d.%03d"`, t.Unix(), t.Nanosecond()/1e6)), nil
		}
		return json.RawMessage(`"` + t.Format(time.RFC3339Nano) + `"`), nil
	}
	return raw, nil
}

// unitNanos is a unit in nanoseconds.
func unitNanos(u string) int64 {
	switch u {
	case unitNs:
		return 1
	case unitUs:
		return 1e3
	case unitMs:
		return 1e6
	}
	return 1e9
}

// ParseFieldMap reads "name=key,name=key:unit" (logpipe check -field-map).
func ParseFieldMap(s string) (map[string]string, error) {
	m := map[string]string{}
	for _, pair := range strings.Split(s, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		k, v, ok := strings.Cut(pair, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("field map entry %q is not name=key", pair)
		}
		m[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return m, nil
}

// SuggestField returns the canonical name a key probably stands for, or
// "" when none is close: for keys a parser does not read.
func SuggestField(format, key string) string {
	nk := normKey(key)
	if nk == "" {
		return ""
	}
	best, bestScore := "", 0
	for _, name := range fieldCandidates(format) {
		score := 0
		for _, alias := range append([]string{name.name}, name.aliases...) {
			na := normKey(alias)
			switch {
			case na == nk:
				score = max(score, 100)
			case len(na) >= 4 && (strings.HasPrefix(nk, na) || strings.HasPrefix(na, nk) || strings.HasSuffix(nk, na)):
				score = max(score, 60+len(na))
			case levenshtein(na, nk) <= 2 && len(na) > 4:
				score = max(score, 50)
			}
		}
		if score > bestScore {
			best, bestScore = name.name, score
		}
	}
	return best
}

type candidate struct {
	name    string
	aliases []string
}

// fieldCandidates lists a format's canonical names with their default
// key and the words vendors and loggers use for them.
func fieldCandidates(format string) []candidate {
	words := map[string][]string{
		"time":          {"timestamp", "ts", "time_start", "start_time", "date", "@timestamp", "request_time"},
		"cache_status":  {"cache", "cache_state", "cachestatus", "x_cache", "cache_result", "fastly_state", "state", "edge_result_type", "cache_hit"},
		"bytes":         {"response_bytes", "body_bytes", "bytes_sent", "body_size", "size", "resp_bytes", "content_length"},
		"duration":      {"time_elapsed", "elapsed", "elapsed_ms", "elapsed_usec", "latency", "response_time", "time_taken", "request_duration"},
		"origin_ms":     {"origin_time", "origin_ttfb", "ttfb", "upstream_time", "upstream_response_time", "backend_time"},
		"status":        {"status_code", "response_status", "http_status", "code"},
		"method":        {"http_method", "verb", "request_method"},
		"url":           {"uri", "request_uri", "request_url", "path", "req_url"},
		"path":          {"uri", "url_path", "request_path"},
		"host":          {"hostname", "domain", "http_host", "request_host", "server_name"},
		"client_ip":     {"ip", "remote_addr", "remote_ip", "client", "clientip", "client_address"},
		"cookie":        {"cookies", "request_cookie", "http_cookie"},
		"set_cookie":    {"response_set_cookie", "setcookie"},
		"cache_control": {"response_cache_control", "cachecontrol"},
		"user_agent":    {"ua", "useragent", "http_user_agent"},
		"referer":       {"referrer", "http_referer"},
	}
	var out []candidate
	for _, k := range keysOf(format) {
		outer, inner, nested := strings.Cut(k.key, ".")
		aliases := append([]string{}, words[k.name]...)
		if nested {
			aliases = append(aliases, inner)
		} else {
			aliases = append(aliases, outer)
		}
		out = append(out, candidate{k.name, aliases})
	}
	return out
}

// normKey lower-cases a key and drops separators: CacheStatus,
// cache-status and cache_status are the same.
func normKey(s string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(s) {
		if c == '_' || c == '-' || c == '.' || c == ' ' || c == '@' {
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

func levenshtein(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 99
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := 1
			if a[i-1] == b[j-1] {
				c = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+c)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
