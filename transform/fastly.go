package transform

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	json "github.com/goccy/go-json"
)

// fastlyJSON holds the keys of logpipe's recommended Fastly JSON logging
// format (docs/formats.md), which extends Fastly's documented example
// format (timestamp, client_ip, host, url, request_method, response_state,
// response_status, response_body_size, ...) with the response headers the
// cache-anomaly checks need.
type fastlyJSON struct {
	Timestamp        json.RawMessage `json:"timestamp"`
	TimeStartMsec    json.RawMessage `json:"time_start_msec"`
	ClientIP         string          `json:"client_ip"`
	GeoCountry       string          `json:"geo_country_code"`
	Host             string          `json:"host"`
	URL              string          `json:"url"`
	RequestMethod    string          `json:"request_method"`
	RequestProtocol  string          `json:"request_protocol"`
	RequestReferer   string          `json:"request_referer"`
	RequestUA        string          `json:"request_user_agent"`
	RequestCookie    string          `json:"request_cookie"`
	RequestAuth      string          `json:"request_authorization"`
	RequestID        string          `json:"request_id"`
	ResponseState    string          `json:"response_state"`
	ResponseStatus   json.RawMessage `json:"response_status"`
	ResponseBodySize json.RawMessage `json:"response_body_size"`
	CacheControl     string          `json:"response_cache_control"`
	Expires          string          `json:"response_expires"`
	Age              json.RawMessage `json:"response_age"`
	Vary             string          `json:"response_vary"`
	SetCookie        string          `json:"response_set_cookie"`
	ContentType      string          `json:"response_content_type"`
	ETag             string          `json:"response_etag"`
	ElapsedUsec      json.RawMessage `json:"time_elapsed_usec"`
	OriginStatus     json.RawMessage `json:"origin_status"`
	OriginMs         json.RawMessage `json:"origin_ttfb_ms"`
	FastlyServer     string          `json:"fastly_server"`
	Datacenter       string          `json:"pop"`
	ServiceID        string          `json:"service_id"`
	ServiceVersion   json.RawMessage `json:"service_version"`
}

// FastlyJSON parses Fastly real-time log streaming lines in logpipe's
// recommended JSON format.
type FastlyJSON struct {
	keys *keyMap // field_map; nil = the default keys
}

// Kind implements Parser.
func (FastlyJSON) Kind() Kind { return KindCDN }

// Parse implements CDNParser.
func (p FastlyJSON) Parse(line []byte, r *CDNRequest) error {
	var f fastlyJSON
	durScale, originScale := 1.0, 1.0
	if f.decode(line, p.keys) && p.keys.scaledValuesOK(&f) {
		durScale, originScale = p.keys.scales()
	} else {
		f = fastlyJSON{}
		if p.keys.mapped() {
			var err error
			if line, err = p.keys.rewrite(line); err != nil {
				return fmt.Errorf("fastly line: %w", err)
			}
		}
		slow := new(fastlyJSON) // a separate value, so that f stays on the stack
		if err := json.Unmarshal(line, slow); err != nil {
			return fmt.Errorf("fastly line is not a JSON object: %w", err)
		}
		f = *slow
	}
	r.Vendor = "fastly"
	switch {
	case len(f.TimeStartMsec) > 0 && string(f.TimeStartMsec) != "null":
		t, err := rawTime(f.TimeStartMsec)
		if err != nil {
			return fmt.Errorf("fastly %q: %w", p.keys.keyFor("time_start_msec"), err)
		}
		r.Time = t
	case len(f.Timestamp) > 0:
		t, err := rawTime(f.Timestamp)
		if err != nil {
			return fmt.Errorf("fastly %q: %w", p.keys.keyFor("timestamp"), err)
		}
		r.Time = t
	default:
		return fmt.Errorf("fastly line has no %q", p.keys.keyFor("timestamp"))
	}
	if f.URL == "" {
		return fmt.Errorf("fastly line has no %q", p.keys.keyFor("url"))
	}
	var err error
	if r.Status, err = rawUint16(f.ResponseStatus); err != nil || r.Status == 0 {
		return fmt.Errorf("fastly %q %s is not an HTTP status", p.keys.keyFor("response_status"), truncate(string(f.ResponseStatus), 16))
	}
	r.Path, r.Query, _ = strings.Cut(f.URL, "?")
	r.Host = strings.ToLower(f.Host)
	r.Method = f.RequestMethod
	r.Protocol = f.RequestProtocol
	r.Referer = f.RequestReferer
	r.UserAgent = f.RequestUA
	r.RequestID = f.RequestID
	r.Country = f.GeoCountry
	r.CacheRaw = f.ResponseState
	r.CacheStatus, r.Collapsed = FastlyState(f.ResponseState)
	r.BytesSent, _ = rawUint64(f.ResponseBodySize)
	r.CacheControl = nullable(f.CacheControl)
	r.Expires = nullable(f.Expires)
	age, _ := rawUint64(f.Age)
	r.Age = uint32(min(age, 1<<32-1))
	r.Vary = nullable(f.Vary)
	r.SetCookie = f.SetCookie != "" && f.SetCookie != "(null)"
	r.ContentType = nullable(f.ContentType)
	r.ETag = nullable(f.ETag)
	if us, err := rawFloat(f.ElapsedUsec); err == nil {
		r.DurationMs = us * durScale / 1000
	}
	r.OriginStatus, _ = rawUint16(f.OriginStatus)
	r.OriginMs, _ = rawFloat(f.OriginMs)
	r.OriginMs *= originScale
	r.POP = f.Datacenter
	if r.POP == "" {
		r.POP = f.FastlyServer
	}
	r.Service = f.ServiceID
	r.ConfigVersion, _ = scalarString(f.ServiceVersion)
	r.Secret.ClientIP = f.ClientIP
	r.Secret.Cookie = nullable(f.RequestCookie)
	r.Secret.Authorization = nullable(f.RequestAuth)
	return nil
}

// nullable maps Fastly's "(null)" for an absent header to "".
func nullable(s string) string {
	if s == "(null)" || s == "-" {
		return ""
	}
	return s
}

// FastlyState normalises a fastly_info.state value: NONE, HIT, HIT-STALE,
// HIT-SYNTH, MISS, PASS, ERROR, BG-ERROR-*, with the optional suffixes
// -CLUSTER, -WAIT (a collapsed request) and -REFRESH.
func FastlyState(s string) (status string, collapsed bool) {
	st := strings.ToUpper(s)
	if strings.HasPrefix(st, "BG-ERROR") {
		return CacheError, false
	}
	refresh := false
	for {
		switch {
		case strings.HasSuffix(st, "-WAIT"):
			collapsed = true
			st = st[:len(st)-5]
			continue
		case strings.HasSuffix(st, "-CLUSTER"):
			st = st[:len(st)-8]
			continue
		case strings.HasSuffix(st, "-REFRESH"):
			refresh = true
			st = st[:len(st)-8]
			continue
		}
		break
	}
	switch st {
	case "HIT":
		return CacheHit, collapsed
	case "HIT-STALE":
		return CacheStale, collapsed
	case "HIT-SYNTH":
		return CacheSynth, collapsed
	case "MISS":
		if refresh {
			return CacheRevalidated, collapsed
		}
		return CacheMiss, collapsed
	case "PASS":
		return CachePass, collapsed
	case "ERROR":
		return CacheError, collapsed
	case "NONE", "":
		return CacheNone, collapsed
	}
	return CacheUnknown, collapsed
}

// errMissing reports an absent or empty value (no allocation: parsers
// ask for optional fields on every line).
var errMissing = errors.New("missing")

func rawUint16(raw json.RawMessage) (uint16, error) {
	s, err := scalarString(raw)
	if err != nil || s == "" {
		return 0, errMissing
	}
	n, err := strconv.ParseUint(s, 10, 16)
	return uint16(n), err
}

func rawUint64(raw json.RawMessage) (uint64, error) {
	s, err := scalarString(raw)
	if err != nil || s == "" || s == "-" {
		return 0, errMissing
	}
	return strconv.ParseUint(s, 10, 64)
}

func rawFloat(raw json.RawMessage) (float64, error) {
	s, err := scalarString(raw)
	if err != nil || s == "" || s == "-" {
		return 0, errMissing
	}
	return strconv.ParseFloat(s, 64)
}
