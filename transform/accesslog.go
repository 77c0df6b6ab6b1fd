package transform

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// NginxCombined is nginx's predefined "combined" log_format.
const NginxCombined = `$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"`

// ApacheCombined is Apache httpd's "combined" LogFormat.
const ApacheCombined = `%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i"`

// alVar says what a variable of an access-log format holds.
type alVar uint8

const (
	alIgnore alVar = iota
	alRemoteAddr
	alRemoteUser
	alTimeLocal
	alTimeISO
	alMsec
	alRequest
	alMethod
	alRequestURI
	alURI
	alArgs
	alProtocol
	alScheme
	alHost
	alStatus
	alBodyBytes
	alBytesSent
	alRequestTime   // seconds
	alRequestTimeUs // microseconds (Apache %D)
	alUpstreamTime
	alUpstreamStatus
	alCacheStatus       // nginx $upstream_cache_status
	alApacheCacheStatus // Apache %{cache-status}e
	alReferer
	alUserAgent
	alCookie
	alAuthorization
	alCacheControl
	alSetCookie
	alExpires
	alAge
	alVary
	alETag
	alContentType
	alRequestID
	alServer
	alCountry
)

// nginxVar maps nginx variable names to what they hold. Variables not
// listed are matched and ignored.
func nginxVar(name string) alVar {
	switch name {
	case "remote_addr", "realip_remote_addr", "http_cf_connecting_ip":
		return alRemoteAddr
	case "remote_user":
		return alRemoteUser
	case "time_local":
		return alTimeLocal
	case "time_iso8601":
		return alTimeISO
	case "msec":
		return alMsec
	case "request":
		return alRequest
	case "request_method":
		return alMethod
	case "request_uri":
		return alRequestURI
	case "uri", "document_uri":
		return alURI
	case "args", "query_string":
		return alArgs
	case "server_protocol":
		return alProtocol
	case "scheme":
		return alScheme
	case "host", "http_host", "server_name":
		return alHost
	case "status":
		return alStatus
	case "body_bytes_sent":
		return alBodyBytes
	case "bytes_sent":
		return alBytesSent
	case "request_time":
		return alRequestTime
	case "upstream_response_time":
		return alUpstreamTime
	case "upstream_status":
		return alUpstreamStatus
	case "upstream_cache_status":
		return alCacheStatus
	case "http_referer":
		return alReferer
	case "http_user_agent":
		return alUserAgent
	case "http_cookie":
		return alCookie
	case "http_authorization":
		return alAuthorization
	case "sent_http_cache_control", "upstream_http_cache_control":
		return alCacheControl
	case "sent_http_set_cookie", "upstream_http_set_cookie":
		return alSetCookie
	case "sent_http_expires", "upstream_http_expires":
		return alExpires
	case "sent_http_age", "upstream_http_age":
		return alAge
	case "sent_http_vary", "upstream_http_vary":
		return alVary
	case "sent_http_etag", "upstream_http_etag":
		return alETag
	case "sent_http_content_type", "upstream_http_content_type":
		return alContentType
	case "request_id":
		return alRequestID
	case "hostname":
		return alServer
	case "geoip_country_code", "geoip2_data_country_code", "http_cf_ipcountry":
		return alCountry
	}
	return alIgnore
}

// alToken is a literal (v == alIgnore and lit != "") or a variable.
type alToken struct {
	lit   string
	v     alVar
	isVar bool
	name  string // variable name, for errors
}

// AccessLog parses access-log lines of a configured nginx log_format or
// Apache LogFormat (both compiled to the same token list). Values are
// taken up to the literal that follows their variable; a backslash
// escapes the next byte (nginx writes \x22 and Apache \" inside quoted
// values), and nginx's \xHH escapes are decoded.
type AccessLog struct {
	vendor string
	format string
	toks   []alToken
}

// NewNginx compiles an nginx log_format string ($var or ${var}).
func NewNginx(format, vendor string) (*AccessLog, error) {
	var toks []alToken
	lit := strings.Builder{}
	for i := 0; i < len(format); {
		c := format[i]
		if c != '$' {
			lit.WriteByte(c)
			i++
			continue
		}
		j := i + 1
		var name string
		if j < len(format) && format[j] == '{' {
			k := strings.IndexByte(format[j:], '}')
			if k < 0 {
				return nil, fmt.Errorf("nginx log_format: unclosed ${ at byte %d", i)
			}
			name, i = format[j+1:j+k], j+k+1
		} else {
			for j < len(format) && (format[j] == '_' || format[j] >= 'a' && format[j] <= 'z' || format[j] >= 'A' && format[j] <= 'Z' || format[j] >= '0' && format[j] <= '9') {
				j++
			}
			name, i = format[i+1:j], j
		}
		if name == "" {
			return nil, fmt.Errorf("nginx log_format: empty variable name at byte %d", i)
		}
		if lit.Len() > 0 {
			toks = append(toks, alToken{lit: lit.String()})
			lit.Reset()
		}
		toks = append(toks, alToken{v: nginxVar(strings.ToLower(name)), isVar: true, name: "$" + name})
	}
	if lit.Len() > 0 {
		toks = append(toks, alToken{lit: lit.String()})
	}
	return newAccessLog(format, vendor, toks)
}

// NewApache compiles an Apache httpd LogFormat string. Supported: %h %a
// %l %u %t %r %s %>s %<s %b %B %O %D %T %v %V %H %m %U %q %{Name}i
// %{Name}o %{cache-status}e %{UNIQUE_ID}e %{VAR}e (ignored) %%.
func NewApache(format string) (*AccessLog, error) {
	var toks []alToken
	lit := strings.Builder{}
	add := func(v alVar, name string) {
		if lit.Len() > 0 {
			toks = append(toks, alToken{lit: lit.String()})
			lit.Reset()
		}
		toks = append(toks, alToken{v: v, isVar: true, name: name})
	}
	for i := 0; i < len(format); i++ {
		c := format[i]
		// A LogFormat copied from httpd.conf keeps the config's escapes:
		// \" is a quote, \\ a backslash.
		if c == '\\' && i+1 < len(format) && (format[i+1] == '"' || format[i+1] == '\\') {
			lit.WriteByte(format[i+1])
			i++
			continue
		}
		if c != '%' {
			lit.WriteByte(c)
			continue
		}
		start := i
		i++
		if i >= len(format) {
			return nil, fmt.Errorf("apache LogFormat: lone %% at the end")
		}
		var arg string
		if format[i] == '{' {
			k := strings.IndexByte(format[i:], '}')
			if k < 0 {
				return nil, fmt.Errorf("apache LogFormat: unclosed %%{ at byte %d", start)
			}
			arg, i = format[i+1:i+k], i+k+1
		}
		for i < len(format) && (format[i] == '>' || format[i] == '<') {
			i++
		}
		if i >= len(format) {
			return nil, fmt.Errorf("apache LogFormat: directive at byte %d has no letter", start)
		}
		name := format[start : i+1]
		switch format[i] {
		case '%':
			lit.WriteByte('%')
		case 'h', 'a':
			add(alRemoteAddr, name)
		case 'l':
			add(alIgnore, name)
		case 'u':
			add(alRemoteUser, name)
		case 't':
			if arg != "" {
				return nil, fmt.Errorf("apache LogFormat: %s (custom time format) is not supported; use %%t", name)
			}
			lit.WriteByte('[')
			add(alTimeLocal, name)
			lit.WriteByte(']')
		case 'r':
			add(alRequest, name)
		case 's':
			add(alStatus, name)
		case 'b', 'B':
			add(alBodyBytes, name)
		case 'O':
			add(alBytesSent, name)
		case 'D':
			add(alRequestTimeUs, name)
		case 'T':
			if arg != "" && arg != "s" {
				return nil, fmt.Errorf("apache LogFormat: %s is not supported; use %%D or %%T", name)
			}
			add(alRequestTime, name)
		case 'v', 'V':
			add(alHost, name)
		case 'H':
			add(alProtocol, name)
		case 'm':
			add(alMethod, name)
		case 'U':
			add(alURI, name)
		case 'q':
			add(alArgs, name)
		case 'i':
			add(nginxVar("http_"+headerVar(arg)), name)
		case 'o':
			add(nginxVar("sent_http_"+headerVar(arg)), name)
		case 'e':
			switch strings.ToLower(arg) {
			case "cache-status":
				add(alApacheCacheStatus, name)
			case "unique_id":
				add(alRequestID, name)
			default:
				add(alIgnore, name)
			}
		default:
			add(alIgnore, name)
		}
	}
	if lit.Len() > 0 {
		toks = append(toks, alToken{lit: lit.String()})
	}
	return newAccessLog(format, "apache", toks)
}

func headerVar(h string) string {
	return strings.ReplaceAll(strings.ToLower(h), "-", "_")
}

func newAccessLog(format, vendor string, toks []alToken) (*AccessLog, error) {
	var time, req, status bool
	for i, t := range toks {
		// $host$request_uri is fine: the path starts at the first "/".
		if t.isVar && i > 0 && toks[i-1].isVar && t.v != alRequestURI && t.v != alURI {
			return nil, fmt.Errorf("log format %q: %s directly follows %s with nothing between them; the line cannot be split", format, t.name, toks[i-1].name)
		}
		switch t.v {
		case alTimeLocal, alTimeISO, alMsec:
			time = true
		case alRequest, alRequestURI, alURI:
			req = true
		case alStatus:
			status = true
		}
	}
	if !time || !req || !status {
		return nil, fmt.Errorf("log format %q must log a time ($time_local, $time_iso8601 or $msec), the request ($request, $request_uri or $uri) and $status", format)
	}
	return &AccessLog{vendor: vendor, format: format, toks: toks}, nil
}

// Kind implements Parser.
func (*AccessLog) Kind() Kind { return KindCDN }

// Parse implements CDNParser.
func (a *AccessLog) Parse(line []byte, r *CDNRequest) error {
	s := string(line)
	pos := 0
	var uri, path, args string
	var haveTime bool
	for i, t := range a.toks {
		if !t.isVar {
			if !strings.HasPrefix(s[pos:], t.lit) {
				return fmt.Errorf("%s line does not match the log format at byte %d: want %q, have %q", a.vendor, pos, t.lit, truncate(s[pos:], 24))
			}
			pos += len(t.lit)
			continue
		}
		end := len(s)
		if i+1 < len(a.toks) && a.toks[i+1].isVar {
			end = strings.IndexByte(s[pos:], '/')
			if end < 0 {
				return fmt.Errorf("%s line has no \"/\" to end %s before %s", a.vendor, t.name, a.toks[i+1].name)
			}
			end += pos
		} else if i+1 < len(a.toks) {
			end = scanTo(s, pos, a.toks[i+1].lit)
			if end < 0 {
				return fmt.Errorf("%s line ends inside %s (no %q after byte %d)", a.vendor, t.name, a.toks[i+1].lit, pos)
			}
		}
		v := s[pos:end]
		pos = end
		if v == "-" || v == "" {
			continue
		}
		if strings.IndexByte(v, '\\') >= 0 {
			v = unescapeLog(v)
		}
		switch t.v {
		case alRemoteAddr:
			r.Secret.ClientIP = v
		case alRemoteUser:
			// Basic-auth user: the request was authenticated.
			r.Secret.Authorization = "user:" + v
		case alTimeLocal:
			tm, err := time.Parse("02/Jan/2006:15:04:05 -0700", v)
			if err != nil {
				return fmt.Errorf("%s %s %q is not dd/Mon/yyyy:HH:MM:SS +zzzz", a.vendor, t.name, truncate(v, 32))
			}
			r.Time, haveTime = tm.UTC(), true
		case alTimeISO:
			tm, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return fmt.Errorf("%s %s %q is not ISO 8601", a.vendor, t.name, truncate(v, 32))
			}
			r.Time, haveTime = tm.UTC(), true
		case alMsec:
			tm, err := epochDecimal(v)
			if err != nil {
				return fmt.Errorf("%s %s: %w", a.vendor, t.name, err)
			}
			r.Time, haveTime = tm, true
		case alRequest:
			// A request line that is not "METHOD TARGET PROTOCOL" (a TLS
			// handshake sent to a plain port, a scanner's junk) was still a
			// request: keep the row, with no method or path.
			if m, rest, ok := strings.Cut(v, " "); ok {
				target, proto, _ := strings.Cut(rest, " ")
				r.Method, uri, r.Protocol = m, target, proto
			}
		case alMethod:
			r.Method = v
		case alRequestURI:
			uri = v
		case alURI:
			path = v
		case alArgs:
			args = strings.TrimPrefix(v, "?")
		case alProtocol:
			r.Protocol = v
		case alScheme:
			r.Scheme = strings.ToLower(v)
		case alHost:
			r.Host = strings.ToLower(v)
		case alStatus:
			st, ok := parseStatus(v)
			if !ok {
				return fmt.Errorf("%s %s %q is not an HTTP status", a.vendor, t.name, truncate(v, 16))
			}
			r.Status = st
		case alBodyBytes:
			if r.BytesSent == 0 {
				r.BytesSent = optUint(v)
			}
		case alBytesSent:
			r.BytesSent = optUint(v)
		case alRequestTime:
			r.DurationMs = optFloat(v) * 1000
		case alRequestTimeUs:
			r.DurationMs = optFloat(v) / 1000
		case alUpstreamTime:
			r.OriginMs = sumTimes(v) * 1000
		case alUpstreamStatus:
			r.OriginStatus = lastStatus(v)
		case alCacheStatus:
			r.CacheRaw = v
			r.CacheStatus = NginxCacheStatus(v)
		case alApacheCacheStatus:
			r.CacheRaw = v
			r.CacheStatus = ApacheCacheStatus(v)
		case alReferer:
			r.Referer = v
		case alUserAgent:
			r.UserAgent = v
		case alCookie:
			r.Secret.Cookie = v
		case alAuthorization:
			r.Secret.Authorization = v
		case alCacheControl:
			r.CacheControl = v
		case alSetCookie:
			r.SetCookie = true
		case alExpires:
			r.Expires = v
		case alAge:
			r.Age = clampAge(v)
		case alVary:
			r.Vary = v
		case alETag:
			r.ETag = v
		case alContentType:
			r.ContentType = v
		case alRequestID:
			r.RequestID = v
		case alServer:
			r.POP = v
		case alCountry:
			r.Country = strings.ToUpper(v)
		}
	}
	if pos != len(s) {
		return fmt.Errorf("%s line has %d unexpected bytes after the log format: %q", a.vendor, len(s)-pos, truncate(s[pos:], 24))
	}
	if !haveTime {
		return fmt.Errorf("%s line has no time", a.vendor)
	}
	if r.Status == 0 {
		return fmt.Errorf("%s line has no status", a.vendor)
	}
	r.Vendor = a.vendor
	if uri != "" {
		r.Path, r.Query = splitURI(uri)
	} else {
		r.Path, r.Query = path, args
	}
	if r.CacheStatus == "" {
		r.CacheStatus = CacheNone
	}
	return nil
}

// scanTo finds lit in s from pos, skipping backslash-escaped bytes; -1
// when absent.
func scanTo(s string, pos int, lit string) int {
	for j := pos; j < len(s); j++ {
		if s[j] == '\\' {
			j++
			continue
		}
		if s[j] == lit[0] && strings.HasPrefix(s[j:], lit) {
			return j
		}
	}
	return -1
}

// unescapeLog decodes \xHH (nginx) and \" \\ (nginx, Apache) escapes.
func unescapeLog(v string) string {
	b := make([]byte, 0, len(v))
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c != '\\' || i+1 >= len(v) {
			b = append(b, c)
			continue
		}
		switch n := v[i+1]; {
		case n == 'x' && i+3 < len(v) && isHex(v[i+2]) && isHex(v[i+3]):
			b = append(b, unhex(v[i+2])<<4|unhex(v[i+3]))
			i += 3
		case n == '"' || n == '\\':
			b = append(b, n)
			i++
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

// sumTimes adds nginx's upstream times ("0.010, 0.020 : 0.005"), one per
// upstream tried.
func sumTimes(v string) float64 {
	var sum float64
	for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ':' || r == ' ' }) {
		sum += optFloat(f)
	}
	return sum
}

// lastStatus returns the last status of nginx's $upstream_status list:
// the upstream that answered.
func lastStatus(v string) uint16 {
	if i := strings.LastIndexAny(v, ",:"); i >= 0 {
		v = v[i+1:]
	}
	n, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 16)
	return uint16(n)
}

// NginxCacheStatus normalises $upstream_cache_status: MISS, BYPASS,
// EXPIRED, STALE, UPDATING, REVALIDATED, HIT.
func NginxCacheStatus(v string) string {
	switch strings.ToUpper(v) {
	case "HIT":
		return CacheHit
	case "MISS":
		return CacheMiss
	case "BYPASS":
		return CachePass
	case "EXPIRED":
		return CacheExpired
	case "STALE":
		return CacheStale
	case "UPDATING":
		return CacheUpdating
	case "REVALIDATED":
		return CacheRevalidated
	case "", "-":
		return CacheNone
	}
	return CacheUnknown
}

// ApacheCacheStatus normalises mod_cache's cache-status note ("cache
// hit", "cache miss: attempting entity save", "conditional cache hit:
// entity refreshed", "cache miss: cache unwilling to store response",
// "cache invalidated", ...).
func ApacheCacheStatus(v string) string {
	l := strings.ToLower(v)
	switch {
	case l == "" || l == "-":
		return CacheNone
	case strings.HasPrefix(l, "conditional cache hit"), strings.Contains(l, "revalidat"):
		return CacheRevalidated
	case strings.HasPrefix(l, "cache hit"):
		return CacheHit
	case strings.Contains(l, "unwilling"), strings.Contains(l, "not cacheable"):
		return CachePass
	case strings.HasPrefix(l, "cache miss"), strings.HasPrefix(l, "cache invalidated"):
		return CacheMiss
	}
	return CacheUnknown
}
