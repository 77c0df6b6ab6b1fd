package transform

import (
	"fmt"
	"sort"
	"strings"
)

// VendorConfig is what to configure on the vendor's side so that its logs
// carry every field logpipe uses, with the stream options that read them
// and one line in that shape (docs and tests: the line parses with full
// coverage, bar the fields the vendor cannot log).
type VendorConfig struct {
	Format string
	// Text is what to paste on the vendor side, with comments.
	Text string
	// Options are the stream's options for logs written that way.
	Options ParserOptions
	// Sample is one line such a config writes.
	Sample string
	// Missing lists the coverage fields the vendor cannot log at all
	// (CloudFront logs no response headers).
	Missing []string
}

// VendorConfigFormats lists the formats VendorConfigFor knows.
func VendorConfigFormats() []string {
	return []string{"apache", "cloudflare-json", "cloudfront-realtime", "fastly-json", "nginx"}
}

// VendorConfigFor returns the vendor-side config for a format.
func VendorConfigFor(format string) (VendorConfig, error) {
	switch format {
	case "fastly-json":
		return VendorConfig{Format: format, Text: fastlyVendorText(), Sample: fastlySample()}, nil
	case "nginx", "nginx-combined":
		return VendorConfig{Format: "nginx", Text: nginxVendorText, Options: ParserOptions{LogFormat: nginxLogpipeFormat}, Sample: nginxSample}, nil
	case "apache", "apache-combined":
		return VendorConfig{Format: "apache", Text: apacheVendorText, Options: ParserOptions{LogFormat: apacheLogFormatOption()}, Sample: apacheSample, Missing: []string{"origin_time"}}, nil
	case "cloudfront-realtime", "cloudfront-standard":
		return VendorConfig{Format: "cloudfront-realtime", Text: cloudfrontVendorText(), Options: ParserOptions{Fields: cloudfrontLogpipeFields}, Sample: cloudfrontSample(), Missing: []string{"cache_control", "set_cookie"}}, nil
	case "cloudflare-json":
		return VendorConfig{Format: format, Text: cloudflareVendorText(), Sample: cloudflareSample}, nil
	}
	return VendorConfig{}, fmt.Errorf("no vendor config for format %q (known: %s)", format, strings.Join(VendorConfigFormats(), ", "))
}

// fastlyFields is logpipe's Fastly JSON logging format: key, VCL
// expression, and whether the value is written unquoted (a number).
var fastlyFields = []struct {
	key, vcl string
	number   bool
}{
	{"timestamp", `strftime(\{"%Y-%m-%dT%H:%M:%S%z"\}, time.start)`, false},
	{"time_start_msec", `time.start.msec`, false},
	{"client_ip", `req.http.Fastly-Client-IP`, false},
	{"geo_country_code", `client.geo.country_code`, false},
	{"host", `json.escape(if(req.http.Fastly-Orig-Host, req.http.Fastly-Orig-Host, req.http.Host))`, false},
	{"url", `json.escape(req.url)`, false},
	{"request_method", `json.escape(req.method)`, false},
	{"request_protocol", `json.escape(req.proto)`, false},
	{"request_referer", `json.escape(req.http.Referer)`, false},
	{"request_user_agent", `json.escape(req.http.User-Agent)`, false},
	{"request_cookie", `json.escape(req.http.Cookie)`, false},
	{"request_authorization", `json.escape(req.http.Authorization)`, false},
	{"request_id", `req.xid`, false},
	{"response_state", `fastly_info.state`, false},
	{"response_status", `resp.status`, true},
	{"response_body_size", `resp.body_bytes_written`, true},
	{"response_cache_control", `json.escape(resp.http.Cache-Control)`, false},
	{"response_expires", `json.escape(resp.http.Expires)`, false},
	{"response_age", `resp.http.Age`, false},
	{"response_vary", `json.escape(resp.http.Vary)`, false},
	{"response_set_cookie", `json.escape(resp.http.Set-Cookie)`, false},
	{"response_content_type", `json.escape(resp.http.Content-Type)`, false},
	{"response_etag", `json.escape(resp.http.ETag)`, false},
	{"time_elapsed_usec", `time.elapsed.usec`, true},
	{"origin_status", `req.http.X-Logpipe-Origin-Status`, false},
	{"origin_ttfb_ms", `req.http.X-Logpipe-Origin-Ms`, false},
	{"fastly_server", `server.identity`, false},
	{"pop", `server.datacenter`, false},
	{"service_id", `req.service_id`, false},
	{"service_version", `req.vcl.version`, true},
}

// fastlyFormat is the JSON logging format string.
func fastlyFormat() string {
	var b strings.Builder
	b.WriteString("{")
	for i, f := range fastlyFields {
		if i > 0 {
			b.WriteString(",")
		}
		if f.number {
			fmt.Fprintf(&b, "\"%s\":%%{%s}V", f.key, f.vcl)
		} else {
			fmt.Fprintf(&b, "\"%s\":\"%%{%s}V\"", f.key, f.vcl)
		}
	}
	b.WriteString("}")
	return b.String()
}

func fastlyVendorText() string {
	return `# Fastly: Logging endpoint (any: Kafka, HTTPS, S3, ...) with "Log line format" = blank
# and this as the format (one line). fastly_info.state, not X-Cache: it tells
# PASS from MISS and marks collapsed requests (-WAIT), which the leak checks need.
` + fastlyFormat() + `

# Origin status and timing are known in vcl_fetch only: keep them for the log
# (a VCL snippet of type "fetch"):
set req.http.X-Logpipe-Origin-Status = beresp.status;
set req.http.X-Logpipe-Origin-Ms = time.elapsed.msec;

# logpipe stream:
#   format: fastly-json
`
}

// fastlySampleValues are what the VCL expressions give for one request (a
// collapsed hit on a personal page, the incident's shape).
var fastlySampleValues = map[string]string{
	"timestamp":              "2017-06-15T09:41:07+0000",
	"time_start_msec":        "1497519667565",
	"client_ip":              "203.0.113.24",
	"geo_country_code":       "JP",
	"host":                   "www.example.jp",
	"url":                    "/mypage/?tab=orders",
	"request_method":         "GET",
	"request_protocol":       "HTTP/2",
	"request_referer":        "https://www.example.jp/",
	"request_user_agent":     "Mozilla/5.0 (iPhone)",
	"request_cookie":         "session_id=9f8e7d6c5b4a",
	"request_authorization":  "(null)",
	"request_id":             "b1946ac92492d2347c6235b4d2611184",
	"response_state":         "HIT-WAIT",
	"response_status":        "200",
	"response_body_size":     "18342",
	"response_cache_control": "no-cache",
	"response_expires":       "Thu, 01 Jan 1970 00:00:00 GMT",
	"response_age":           "0",
	"response_vary":          "(null)",
	"response_set_cookie":    "session_id=9f8e; Path=/",
	"response_content_type":  "text/html",
	"response_etag":          "(null)",
	"time_elapsed_usec":      "141812",
	"origin_status":          "200",
	"origin_ttfb_ms":         "140",
	"fastly_server":          "cache-nrt-rjtf7700044-NRT",
	"pop":                    "NRT",
	"service_id":             "SU1Z0isxPaozGVKXdv0eY",
	"service_version":        "42",
}

// fastlySample is the format string with each %{...}V replaced by its
// sample value: the line Fastly writes.
func fastlySample() string {
	s := fastlyFormat()
	for _, f := range fastlyFields {
		s = strings.Replace(s, "%{"+f.vcl+"}V", fastlySampleValues[f.key], 1)
	}
	return s
}

const nginxLogpipeFormat = `$remote_addr - $remote_user [$time_iso8601] "$request" $status $bytes_sent "$http_referer" "$http_user_agent" host=$host rt=$request_time urt="$upstream_response_time" us=$upstream_status cache=$upstream_cache_status cc="$sent_http_cache_control" exp="$sent_http_expires" age=$sent_http_age vary="$sent_http_vary" sc="$sent_http_set_cookie" ck="$http_cookie" rid=$request_id`

var nginxVendorText = `# nginx (http {} block). $upstream_cache_status is the cache outcome (nginx as
# the cache, proxy_cache); $upstream_response_time the origin time; the
# Set-Cookie and Cache-Control sent, and the request's cookies.
log_format logpipe '` + nginxLogpipeFormat + `';
access_log /var/log/nginx/access.log logpipe;

# logpipe stream:
#   format: nginx
#   log_format: '` + nginxLogpipeFormat + `'
`

const nginxSample = `203.0.113.24 - - [2017-06-15T09:41:07+09:00] "GET /mypage/?tab=orders HTTP/2.0" 200 18342 "https://www.example.jp/" "Mozilla/5.0 (iPhone)" host=www.example.jp rt=0.141 urt="0.140" us=200 cache=HIT cc="no-cache" exp="Thu, 01 Jan 1970 00:00:00 GMT" age=0 vary="-" sc="session_id=9f8e; Path=/" ck="session_id=9f8e7d6c5b4a" rid=b1946ac92492d2347c6235b4d2611184`

const apacheLogpipeFormat = `%h %l %u %t \"%r\" %>s %O \"%{Referer}i\" \"%{User-Agent}i\" host=%v rt=%D cache=\"%{cache-status}e\" cc=\"%{Cache-Control}o\" exp=\"%{Expires}o\" age=\"%{Age}o\" vary=\"%{Vary}o\" sc=\"%{Set-Cookie}o\" ck=\"%{Cookie}i\" rid=%{UNIQUE_ID}e`

// apacheLogFormatOption is the LogFormat as Apache reads it (quotes
// unescaped): the stream's log_format.
func apacheLogFormatOption() string { return strings.ReplaceAll(apacheLogpipeFormat, `\"`, `"`) }

var apacheVendorText = `# Apache httpd (mod_log_config; mod_cache sets cache-status, mod_unique_id
# UNIQUE_ID). Apache logs no origin time for a cached proxy: origin_time stays 0.
LogFormat "` + apacheLogpipeFormat + `" logpipe
CustomLog logs/access_log logpipe

# logpipe stream:
#   format: apache
#   log_format: '` + strings.ReplaceAll(apacheLogpipeFormat, `\"`, `"`) + `'
`

const apacheSample = `203.0.113.24 - - [15/Jun/2017:09:41:07 +0900] "GET /mypage/?tab=orders HTTP/1.1" 200 18342 "https://www.example.jp/" "Mozilla/5.0 (iPhone)" host=www.example.jp rt=141000 cache="cache hit" cc="no-cache" exp="Thu, 01 Jan 1970 00:00:00 GMT" age="0" vary="-" sc="session_id=9f8e; Path=/" ck="session_id=9f8e7d6c5b4a" rid=WUJ3AH8AAQEAAB2Cz0AAAAA`

// cloudfrontLogpipeFields is the real-time log field selection logpipe
// wants, in the order CloudFront writes them.
var cloudfrontLogpipeFields = []string{
	"timestamp", "c-ip", "time-to-first-byte", "sc-status", "sc-bytes", "cs-method", "cs-protocol",
	"cs-host", "cs-uri-stem", "x-edge-location", "x-edge-request-id", "x-host-header", "time-taken",
	"cs-protocol-version", "cs-user-agent", "cs-referer", "cs-cookie", "cs-uri-query",
	"x-edge-result-type", "x-edge-detailed-result-type", "sc-content-type", "cs-headers", "origin-fbl",
}

func cloudfrontVendorText() string {
	return `# CloudFront real-time log configuration: select these fields (aws cloudfront
# create-realtime-log-config --fields ...). CloudFront logs no response
# headers: Set-Cookie and Cache-Control must come from the origin's log.
` + strings.Join(cloudfrontLogpipeFields, ",") + `

# logpipe stream:
#   format: cloudfront-realtime
#   fields: [` + strings.Join(cloudfrontLogpipeFields, ", ") + `]
`
}

var cloudfrontSampleValues = map[string]string{
	"timestamp": "1497519667.565", "c-ip": "203.0.113.24", "time-to-first-byte": "0.141", "sc-status": "200",
	"sc-bytes": "18342", "cs-method": "GET", "cs-protocol": "https", "cs-host": "d111111abcdef8.cloudfront.net",
	"cs-uri-stem": "/mypage/", "x-edge-location": "NRT57-P1", "x-edge-request-id": "SOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==",
	"x-host-header": "www.example.jp", "time-taken": "0.141", "cs-protocol-version": "HTTP/2.0",
	"cs-user-agent": "Mozilla/5.0%20(iPhone)", "cs-referer": "https://www.example.jp/", "cs-cookie": "session_id=9f8e7d6c5b4a",
	"cs-uri-query": "tab=orders", "x-edge-result-type": "Hit", "x-edge-detailed-result-type": "Hit",
	"sc-content-type": "text/html", "cs-headers": "Host:www.example.jp%0A", "origin-fbl": "0.140",
}

func cloudfrontSample() string {
	vals := make([]string, len(cloudfrontLogpipeFields))
	for i, f := range cloudfrontLogpipeFields {
		vals[i] = cloudfrontSampleValues[f]
	}
	return strings.Join(vals, "\t")
}

// cloudflareLogpipeFields is the Logpush http_requests field selection.
var cloudflareLogpipeFields = []string{
	"CacheCacheStatus", "ClientCountry", "ClientIP", "ClientRequestHost", "ClientRequestMethod",
	"ClientRequestProtocol", "ClientRequestReferer", "ClientRequestScheme", "ClientRequestURI",
	"ClientRequestUserAgent", "EdgeColoCode", "EdgeEndTimestamp", "EdgeResponseBytes",
	"EdgeResponseContentType", "EdgeResponseStatus", "EdgeStartTimestamp", "OriginResponseDurationMs",
	"OriginResponseHTTPExpires", "OriginResponseStatus", "RayID", "ZoneName",
	"RequestHeaders", "ResponseHeaders", "Cookies",
}

func cloudflareVendorText() string {
	fields := append([]string(nil), cloudflareLogpipeFields...)
	sort.Strings(fields)
	return `# Cloudflare Logpush job, dataset http_requests, output_options:
{"field_names": ["` + strings.Join(fields, `", "`) + `"], "timestamp_format": "unixnano"}

# Custom fields (Rulesets API, phase http_log_custom_fields): response
# headers cache-control, expires, set-cookie, age, vary, etag; request
# headers cookie, authorization; cookies: your session cookie names. Without
# them RequestHeaders/ResponseHeaders/Cookies stay empty.
{"action": "log_custom_field", "action_parameters": {
  "request_fields": [{"name": "cookie"}, {"name": "authorization"}],
  "response_fields": [{"name": "cache-control"}, {"name": "expires"}, {"name": "set-cookie"}, {"name": "age"}, {"name": "vary"}, {"name": "etag"}],
  "cookie_fields": [{"name": "session_id"}]}}

# logpipe stream:
#   format: cloudflare-json
`
}

const cloudflareSample = `{"CacheCacheStatus":"hit","ClientCountry":"jp","ClientIP":"203.0.113.24","ClientRequestHost":"www.example.jp","ClientRequestMethod":"GET","ClientRequestProtocol":"HTTP/2","ClientRequestReferer":"https://www.example.jp/","ClientRequestScheme":"https","ClientRequestURI":"/mypage/?tab=orders","ClientRequestUserAgent":"Mozilla/5.0 (iPhone)","EdgeColoCode":"NRT","EdgeEndTimestamp":1497519667706000000,"EdgeResponseBytes":18342,"EdgeResponseContentType":"text/html","EdgeResponseStatus":200,"EdgeStartTimestamp":1497519667565000000,"OriginResponseDurationMs":140,"OriginResponseHTTPExpires":"Thu, 01 Jan 1970 00:00:00 GMT","OriginResponseStatus":200,"RayID":"3a1b2c3d4e5f6789","ZoneName":"example.jp","RequestHeaders":{"cookie":"session_id=9f8e7d6c5b4a"},"ResponseHeaders":{"cache-control":"no-cache","set-cookie":"session_id=9f8e; Path=/","age":"0","vary":"Cookie"},"Cookies":{"session_id":"9f8e7d6c5b4a"}}`
