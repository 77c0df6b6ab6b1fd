package transform

import (
	"fmt"
	"strings"

	json "github.com/goccy/go-json"
)

// akamaiDS2 holds the DataStream 2 JSON fields logpipe reads. DataStream
// omits empty fields; values may be strings or numbers.
type akamaiDS2 struct {
	CP            flexString `json:"cp"`
	StreamID      flexString `json:"streamId"`
	ReqID         flexString `json:"reqId"`
	ReqTimeSec    flexString `json:"reqTimeSec"`
	Bytes         flexString `json:"bytes"`
	TotalBytes    flexString `json:"totalBytes"`
	CliIP         string     `json:"cliIP"`
	StatusCode    flexString `json:"statusCode"`
	Proto         string     `json:"proto"`
	ReqHost       string     `json:"reqHost"`
	ReqMethod     string     `json:"reqMethod"`
	ReqPath       string     `json:"reqPath"`
	QueryStr      string     `json:"queryStr"`
	RspCT         string     `json:"rspContentType"`
	UA            string     `json:"UA"`
	Cookie        string     `json:"cookie"`
	Referer       string     `json:"referer"`
	CacheStatus   flexString `json:"cacheStatus"`
	Cacheable     flexString `json:"cacheable"`
	Country       string     `json:"country"`
	EdgeIP        string     `json:"edgeIP"`
	TurnAroundMs  flexString `json:"turnAroundTimeMSec"`
	TransferMs    flexString `json:"transferTimeMSec"`
	TLSVersion    string     `json:"tlsVersion"`
	ErrorCode     string     `json:"errorCode"`
	ContentLength flexString `json:"rspContentLen"`
	// Not DataStream fields: a field_map maps custom fields to them.
	CacheControl string     `json:"rspCacheControl"`
	SetCookie    string     `json:"rspSetCookie"`
	Expires      string     `json:"rspExpires"`
	OriginMs     flexString `json:"originTimeMSec"`
}

// AkamaiDS2 parses Akamai DataStream 2 JSON lines.
type AkamaiDS2 struct {
	keys *keyMap // field_map; nil = the default keys
}

// Kind implements Parser.
func (AkamaiDS2) Kind() Kind { return KindCDN }

// Parse implements CDNParser.
func (p AkamaiDS2) Parse(line []byte, r *CDNRequest) error {
	var a akamaiDS2
	if p.keys.mapped() {
		var err error
		if line, err = p.keys.rewrite(line); err != nil {
			return fmt.Errorf("akamai line: %w", err)
		}
	}
	if err := json.Unmarshal(line, &a); err != nil {
		return fmt.Errorf("akamai line is not a DataStream 2 JSON object: %w", err)
	}
	if a.ReqTimeSec == "" {
		return fmt.Errorf("akamai line has no %q", p.keys.keyFor("reqTimeSec"))
	}
	t, err := epochDecimal(string(a.ReqTimeSec))
	if err != nil {
		return fmt.Errorf("akamai %q: %w", p.keys.keyFor("reqTimeSec"), err)
	}
	st, ok := parseStatus(string(a.StatusCode))
	if !ok {
		return fmt.Errorf("akamai %q %q is not an HTTP status", p.keys.keyFor("statusCode"), truncate(string(a.StatusCode), 16))
	}
	r.Vendor = "akamai"
	r.Time = t
	r.Status = st
	r.Service = string(a.CP)
	r.RequestID = string(a.ReqID)
	r.Host = strings.ToLower(a.ReqHost)
	r.Method = a.ReqMethod
	r.Scheme = strings.ToLower(a.Proto)
	r.Path = a.ReqPath
	r.Query = strings.TrimPrefix(a.QueryStr, "?")
	r.ContentType = percentDecode(a.RspCT)
	r.UserAgent = formDecode(a.UA)
	r.Referer = percentDecode(a.Referer)
	r.Country = strings.ToUpper(a.Country)
	r.POP = a.EdgeIP
	r.BytesSent = optUint(string(a.TotalBytes))
	if r.BytesSent == 0 {
		r.BytesSent = optUint(string(a.Bytes))
	}
	r.DurationMs = optFloat(string(a.TurnAroundMs)) + optFloat(string(a.TransferMs))
	r.CacheStatus, r.CacheRaw = AkamaiCacheStatus(string(a.CacheStatus), string(a.Cacheable))
	if a.ErrorCode != "" && r.Status >= 500 && r.CacheStatus == CacheMiss {
		r.CacheStatus = CacheError
	}
	r.Secret.ClientIP = a.CliIP
	r.Secret.Cookie = formDecode(a.Cookie)
	r.CacheControl = percentDecode(a.CacheControl)
	r.SetCookie = a.SetCookie != "" && a.SetCookie != "-"
	r.Expires = percentDecode(a.Expires)
	r.OriginMs = optFloat(string(a.OriginMs))
	return nil
}

// AkamaiCacheStatus normalises DataStream 2 cacheStatus (1 = served from
// the edge cache, 0 = not) with cacheable (1 = the object may be cached):
// 1 is a hit, 0 a miss when cacheable and a pass when not. raw keeps both.
func AkamaiCacheStatus(cacheStatus, cacheable string) (status, raw string) {
	raw = "cacheStatus=" + cacheStatus
	if cacheStatus == "" {
		raw = ""
	}
	if cacheable != "" {
		if raw != "" {
			raw += ","
		}
		raw += "cacheable=" + cacheable
	}
	switch cacheStatus {
	case "1":
		return CacheHit, raw
	case "0":
		if cacheable == "0" {
			return CachePass, raw
		}
		return CacheMiss, raw
	case "":
		return CacheNone, raw
	}
	return CacheUnknown, raw
}

// formDecode decodes %XX escapes and "+" as a space (DataStream encodes
// the User-Agent that way).
func formDecode(s string) string {
	if strings.IndexByte(s, '+') >= 0 {
		s = strings.ReplaceAll(s, "+", " ")
	}
	return percentDecode(s)
}
