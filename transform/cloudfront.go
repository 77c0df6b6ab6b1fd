package transform

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// CloudFrontStandardFields are the 33 fields of CloudFront standard logs,
// in their documented order. Older log files hold a prefix of this list.
var CloudFrontStandardFields = []string{
	"date", "time", "x-edge-location", "sc-bytes", "c-ip", "cs-method", "cs(Host)",
	"cs-uri-stem", "sc-status", "cs(Referer)", "cs(User-Agent)", "cs-uri-query",
	"cs(Cookie)", "x-edge-result-type", "x-edge-request-id", "x-host-header",
	"cs-protocol", "cs-bytes", "time-taken", "x-forwarded-for", "ssl-protocol",
	"ssl-cipher", "x-edge-response-result-type", "cs-protocol-version", "fle-status",
	"fle-encrypted-fields", "c-port", "time-to-first-byte", "x-edge-detailed-result-type",
	"sc-content-type", "sc-content-len", "sc-range-start", "sc-range-end",
}

// CloudFrontRealtimeFields is the default field list of CloudFront
// real-time logs: every documented field, in the documented order. A
// real-time log configuration sends the fields it selects in the order it
// lists them; give that list as the stream's `fields`.
var CloudFrontRealtimeFields = []string{
	"timestamp", "c-ip", "time-to-first-byte", "sc-status", "sc-bytes", "cs-method",
	"cs-protocol", "cs-host", "cs-uri-stem", "cs-bytes", "x-edge-location",
	"x-edge-request-id", "x-host-header", "time-taken", "cs-protocol-version",
	"c-ip-version", "cs-user-agent", "cs-referer", "cs-cookie", "cs-uri-query",
	"x-edge-response-result-type", "x-forwarded-for", "ssl-protocol", "ssl-cipher",
	"x-edge-result-type", "fle-encrypted-fields", "fle-status", "sc-content-type",
	"sc-content-len", "sc-range-start", "sc-range-end", "c-port",
	"x-edge-detailed-result-type", "c-country", "cs-accept-encoding", "cs-accept",
	"cache-behavior-path-pattern", "cs-headers", "cs-header-names", "cs-headers-count",
	"primary-distribution-id", "primary-distribution-dns-name", "origin-fbl",
	"origin-lbl", "asn",
}

// cfField says what a CloudFront column holds.
type cfField uint8

const (
	cfIgnore cfField = iota
	cfDate
	cfTime
	cfTimestamp
	cfTimestampMs
	cfEdgeLocation
	cfScBytes
	cfClientIP
	cfMethod
	cfCsHost
	cfURIStem
	cfStatus
	cfReferer
	cfUA
	cfQuery
	cfCookie
	cfResultType
	cfRequestID
	cfHostHeader
	cfScheme
	cfTimeTaken
	cfResponseResultType
	cfProtoVersion
	cfDetailedResultType
	cfContentType
	cfCountry
	cfHeaders
	cfOriginFBL
	cfDistributionID
)

func cloudFrontField(name string) cfField {
	switch name {
	case "date":
		return cfDate
	case "time":
		return cfTime
	case "timestamp":
		return cfTimestamp
	case "timestamp(ms)":
		return cfTimestampMs
	case "x-edge-location":
		return cfEdgeLocation
	case "sc-bytes":
		return cfScBytes
	case "c-ip":
		return cfClientIP
	case "cs-method":
		return cfMethod
	case "cs(Host)", "cs-host":
		return cfCsHost
	case "cs-uri-stem":
		return cfURIStem
	case "sc-status":
		return cfStatus
	case "cs(Referer)", "cs-referer":
		return cfReferer
	case "cs(User-Agent)", "cs-user-agent":
		return cfUA
	case "cs-uri-query":
		return cfQuery
	case "cs(Cookie)", "cs-cookie":
		return cfCookie
	case "x-edge-result-type":
		return cfResultType
	case "x-edge-request-id":
		return cfRequestID
	case "x-host-header":
		return cfHostHeader
	case "cs-protocol":
		return cfScheme
	case "time-taken":
		return cfTimeTaken
	case "x-edge-response-result-type":
		return cfResponseResultType
	case "cs-protocol-version":
		return cfProtoVersion
	case "x-edge-detailed-result-type":
		return cfDetailedResultType
	case "sc-content-type":
		return cfContentType
	case "c-country":
		return cfCountry
	case "cs-headers":
		return cfHeaders
	case "origin-fbl":
		return cfOriginFBL
	case "primary-distribution-id":
		return cfDistributionID
	}
	return cfIgnore
}

// CloudFront parses CloudFront standard (W3C, tab-separated) or real-time
// (tab-separated, selected fields) log lines. Columns are mapped by the
// configured field list, which is fixed for the parser's life: parsers
// are stateless per line, so a `#Fields` header line is checked against
// the list (a prefix of it is fine: older standard logs had fewer fields)
// and a mismatch is rejected with a reason instead of silently
// misreading the columns that follow.
type CloudFront struct {
	names    []string
	cols     []cfField
	minCols  int // columns up to the last required one
	realtime bool
}

// NewCloudFrontStandard returns a parser of CloudFront standard logs;
// fields nil means the documented 33 fields.
func NewCloudFrontStandard(fields []string) (*CloudFront, error) {
	if len(fields) == 0 {
		fields = CloudFrontStandardFields
	}
	return newCloudFront(fields, false)
}

// NewCloudFrontRealtime returns a parser of CloudFront real-time logs;
// fields nil means CloudFrontRealtimeFields.
func NewCloudFrontRealtime(fields []string) (*CloudFront, error) {
	if len(fields) == 0 {
		fields = CloudFrontRealtimeFields
	}
	return newCloudFront(fields, true)
}

func newCloudFront(fields []string, realtime bool) (*CloudFront, error) {
	c := &CloudFront{names: fields, realtime: realtime, cols: make([]cfField, len(fields))}
	seen := map[cfField]bool{}
	for i, name := range fields {
		f := cloudFrontField(strings.TrimSpace(name))
		if f != cfIgnore && seen[f] {
			return nil, fmt.Errorf("cloudfront fields: %q listed twice", name)
		}
		seen[f] = true
		c.cols[i] = f
		switch f {
		case cfDate, cfTime, cfTimestamp, cfTimestampMs, cfStatus:
			c.minCols = i + 1
		}
	}
	if realtime && !seen[cfTimestamp] && !seen[cfTimestampMs] {
		return nil, fmt.Errorf("cloudfront real-time fields must include \"timestamp\" or \"timestamp(ms)\"")
	}
	if !realtime && (!seen[cfDate] || !seen[cfTime]) {
		return nil, fmt.Errorf("cloudfront standard fields must include \"date\" and \"time\"")
	}
	if !seen[cfStatus] {
		return nil, fmt.Errorf("cloudfront fields must include \"sc-status\"")
	}
	return c, nil
}

// Kind implements Parser.
func (*CloudFront) Kind() Kind { return KindCDN }

// Parse implements CDNParser.
func (c *CloudFront) Parse(line []byte, r *CDNRequest) error {
	s := string(line)
	if len(s) > 0 && s[0] == '#' {
		return c.header(s)
	}
	what := "cloudfront standard"
	if c.realtime {
		what = "cloudfront real-time"
	}
	n := strings.Count(s, "\t") + 1
	if n < c.minCols {
		return fmt.Errorf("%s line has %d tab-separated fields, want at least %d (%s)", what, n, c.minCols, strings.Join(c.names[:c.minCols], " "))
	}
	if n > len(c.cols) {
		return fmt.Errorf("%s line has %d tab-separated fields, the configured field list has %d: set the stream's fields", what, n, len(c.cols))
	}
	r.Vendor = "cloudfront"
	var date, clock, result, detailed, respResult, csHost, hostHeader, uri string
	for i := 0; i < n; i++ {
		var v string
		if j := strings.IndexByte(s, '\t'); j >= 0 {
			v, s = s[:j], s[j+1:]
		} else {
			v, s = s, ""
		}
		if v == "-" {
			v = ""
		}
		switch c.cols[i] {
		case cfDate:
			date = v
		case cfTime:
			clock = v
		case cfTimestamp:
			t, err := epochDecimal(v)
			if err != nil {
				return fmt.Errorf("%s \"timestamp\": %w", what, err)
			}
			r.Time = t
		case cfTimestampMs:
			ms, err := strconv.ParseInt(v, 10, 64)
			if err != nil || ms <= 0 || ms > 1e14 {
				return fmt.Errorf("%s \"timestamp(ms)\" %q is not epoch milliseconds", what, truncate(v, 32))
			}
			r.Time = time.UnixMilli(ms).UTC()
		case cfEdgeLocation:
			r.POP = v
		case cfScBytes:
			r.BytesSent = optUint(v)
		case cfClientIP:
			r.Secret.ClientIP = v
		case cfMethod:
			r.Method = v
		case cfCsHost:
			csHost = v
		case cfURIStem:
			uri = percentDecode(v)
		case cfStatus:
			st, ok := parseStatus(v)
			if !ok {
				return fmt.Errorf("%s \"sc-status\" %q is not an HTTP status", what, truncate(v, 16))
			}
			r.Status = st
		case cfReferer:
			r.Referer = percentDecode(v)
		case cfUA:
			r.UserAgent = percentDecode(v)
		case cfQuery:
			r.Query = percentDecode(v)
		case cfCookie:
			r.Secret.Cookie = percentDecode(v)
		case cfResultType:
			result = v
		case cfRequestID:
			r.RequestID = v
		case cfHostHeader:
			hostHeader = v
		case cfScheme:
			r.Scheme = strings.ToLower(v)
		case cfTimeTaken:
			r.DurationMs = optFloat(v) * 1000
		case cfResponseResultType:
			respResult = v
		case cfProtoVersion:
			r.Protocol = v
		case cfDetailedResultType:
			detailed = v
		case cfContentType:
			r.ContentType = percentDecode(v)
		case cfCountry:
			r.Country = v
		case cfHeaders:
			r.Secret.Authorization = headerValue(percentDecode(v), "authorization")
		case cfOriginFBL:
			r.OriginMs = optFloat(v) * 1000
		case cfDistributionID:
			r.Service = v
		}
	}
	if !c.realtime {
		t, err := time.Parse("2006-01-02 15:04:05", date+" "+clock)
		if err != nil {
			return fmt.Errorf("%s \"date\" %q and \"time\" %q are not YYYY-MM-DD HH:MM:SS", what, truncate(date, 16), truncate(clock, 16))
		}
		r.Time = t
	}
	path, q, hasQ := strings.Cut(uri, "?") // real-time logs put the query in cs-uri-stem
	r.Path = path
	if hasQ && r.Query == "" {
		r.Query = q
	}
	r.Host = strings.ToLower(hostHeader)
	if r.Host == "" {
		r.Host = strings.ToLower(csHost)
	}
	if r.Service == "" {
		r.Service = csHost
	}
	if result == "" {
		result = respResult
	}
	r.CacheStatus = CloudFrontResult(result, detailed)
	r.CacheRaw = result
	if detailed != "" && detailed != result {
		r.CacheRaw = result + "/" + detailed
	}
	return nil
}

// header checks a #Version or #Fields line.
func (c *CloudFront) header(s string) error {
	rest, ok := strings.CutPrefix(s, "#Fields:")
	if !ok {
		return ErrSkip
	}
	got := strings.Fields(rest)
	if len(got) > len(c.names) {
		return fmt.Errorf("cloudfront #Fields header lists %d fields, the configured field list has %d: set the stream's fields", len(got), len(c.names))
	}
	for i, f := range got {
		if f != c.names[i] {
			return fmt.Errorf("cloudfront #Fields header has %q as field %d where the configured list has %q: set the stream's fields", truncate(f, 32), i+1, c.names[i])
		}
	}
	return ErrSkip
}

// CloudFrontResult normalises x-edge-result-type (Hit, RefreshHit,
// OriginShieldHit, Miss, LimitExceeded, CapacityExceeded, Error,
// Redirect), refined by x-edge-detailed-result-type where it says more
// (OriginShieldHit, MissGeneratedResponse, the Error subtypes).
func CloudFrontResult(result, detailed string) string {
	switch detailed {
	case "OriginShieldHit":
		return CacheHit
	case "MissGeneratedResponse", "FunctionGeneratedResponse":
		return CacheSynth
	}
	switch result {
	case "Hit", "OriginShieldHit":
		return CacheHit
	case "RefreshHit":
		return CacheRevalidated
	case "Miss":
		return CacheMiss
	case "LimitExceeded", "CapacityExceeded", "Error":
		return CacheError
	case "Redirect", "FunctionGeneratedResponse":
		return CacheSynth
	case "":
		return CacheNone
	}
	return CacheUnknown
}

// epochDecimal reads seconds since the epoch with an optional decimal
// fraction ("1598289066.565") without float rounding.
func epochDecimal(v string) (time.Time, error) {
	secs, frac, _ := strings.Cut(v, ".")
	sec, err := strconv.ParseInt(secs, 10, 64)
	if err != nil || sec <= 0 || sec > 1e11 || len(frac) > 9 {
		return time.Time{}, fmt.Errorf("%q is not epoch seconds", truncate(v, 32))
	}
	var ns int64
	if frac != "" {
		f, err := strconv.ParseUint(frac, 10, 32)
		if err != nil {
			return time.Time{}, fmt.Errorf("%q is not epoch seconds", truncate(v, 32))
		}
		ns = int64(f)
		for i := len(frac); i < 9; i++ {
			ns *= 10
		}
	}
	return time.Unix(sec, ns).UTC(), nil
}

// headerValue finds a header in "Name:value" lines (CloudFront cs-headers).
func headerValue(lines, name string) string {
	for lines != "" {
		var l string
		l, lines, _ = strings.Cut(lines, "\n")
		k, v, ok := strings.Cut(l, ":")
		if ok && strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
