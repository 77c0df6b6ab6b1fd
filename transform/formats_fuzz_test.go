package transform

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/logpipe/logpipe/transform/redact"
)

// goldenLines returns the lines of a format's golden inputs, as fuzz seeds
// and benchmark input: of testdata/FORMAT/STEM.log when stem is given,
// else of those inputs that need no options file.
func goldenLines(t testing.TB, format, stem string) [][]byte {
	t.Helper()
	logs, _ := filepath.Glob(filepath.Join("testdata", format, "*.log"))
	var lines [][]byte
	for _, l := range logs {
		if stem != "" {
			if filepath.Base(l) != stem+".log" {
				continue
			}
		} else if _, err := os.Stat(strings.TrimSuffix(l, ".log") + ".options.json"); err == nil {
			continue // needs options the caller did not give
		}
		in, err := os.ReadFile(l)
		if err != nil {
			t.Fatal(err)
		}
		EachLine(in, func(_ int, line []byte) { lines = append(lines, append([]byte(nil), line...)) })
	}
	if len(lines) == 0 {
		t.Fatalf("no golden lines for %s %s", format, stem)
	}
	return lines
}

// fuzzFormat checks that a parser never panics and that what it accepts
// is a usable record.
func fuzzFormat(f *testing.F, format string, opts ParserOptions, optionsFile string) {
	p, err := NewParserWith(format, opts)
	if err != nil {
		f.Fatal(err)
	}
	for _, l := range goldenLines(f, format, optionsFile) {
		f.Add(l)
	}
	enr, err := NewEnricher(EnrichConfig{HashKey: []byte("fuzz-key-0123456789abcdef"), SessionCookies: []string{"session"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		rec, err := parseLine(p, line)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("error without a reason")
			}
			// What a dead letter keeps: no secret shape survives.
			if l := redact.Residue(string(enr.DeadLetter(line, 64<<10))+"\n"+enr.RedactString(err.Error()), false); l != "" {
				t.Fatalf("dead letter of %q keeps %s", line, l)
			}
			return
		}
		defer func() {
			// After enrichment no secret shape survives in any column.
			switch r := rec.(type) {
			case CDNRequest:
				enr.CDN(&r)
				if l := residueIn(r); l != "" {
					t.Fatalf("row of %q keeps %s", line, l)
				}
			case JobEvent:
				enr.Job(&r)
				if l := residueIn(r); l != "" {
					t.Fatalf("row of %q keeps %s", line, l)
				}
			}
		}()
		switch r := rec.(type) {
		case CDNRequest:
			if r.Vendor == "" || r.Time.IsZero() || r.CacheStatus == "" {
				t.Fatalf("accepted %q without vendor, time or cache status: %+v", line, r)
			}
		case JobEvent:
			if r.Job == "" || r.RunID == "" || !validEvent(r.Event) || r.Time.IsZero() {
				t.Fatalf("accepted %q without job, run id, valid event or time: %+v", line, r)
			}
		}
	})
}

// residueIn checks every string field of a record with redact.Residue.
func residueIn(rec any) string {
	v := reflect.ValueOf(rec)
	for i := 0; i < v.NumField(); i++ {
		f, name := v.Field(i), v.Type().Field(i).Name
		switch {
		case f.Kind() == reflect.String:
			if l := redact.Residue(f.String(), name == "UserAgent"); l != "" {
				return name + ": " + l
			}
		case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.String:
			for j := 0; j < f.Len(); j++ {
				if l := redact.Residue(f.Index(j).String(), false); l != "" {
					return name + ": " + l
				}
			}
		}
	}
	return ""
}

var (
	nginxCacheFormat  = `$remote_addr - $remote_user [$time_iso8601] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" host=$host rt=$request_time uct="$upstream_connect_time" urt="$upstream_response_time" us=$upstream_status cache=$upstream_cache_status cc="$sent_http_cache_control" exp="$sent_http_expires" age=$sent_http_age vary="$sent_http_vary" sc="$sent_http_set_cookie" ck="$http_cookie" rid=$request_id`
	apacheCacheFormat = `%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i" %D "%{Cache-Control}o" "%{Set-Cookie}o" "%{cache-status}e" %{Host}i`
)

func FuzzCloudFrontStandard(f *testing.F) {
	fuzzFormat(f, "cloudfront-standard", ParserOptions{}, "")
}

func FuzzCloudFrontRealtime(f *testing.F) {
	fuzzFormat(f, "cloudfront-realtime", ParserOptions{}, "")
}

func FuzzCloudflareJSON(f *testing.F) { fuzzFormat(f, "cloudflare-json", ParserOptions{}, "") }

func FuzzAkamaiDS2(f *testing.F) { fuzzFormat(f, "akamai-datastream2", ParserOptions{}, "") }

func FuzzFastlyJSON(f *testing.F) { fuzzFormat(f, "fastly-json", ParserOptions{}, "") }

func FuzzNginxCombined(f *testing.F) { fuzzFormat(f, "nginx-combined", ParserOptions{}, "") }

func FuzzNginxLogFormat(f *testing.F) {
	fuzzFormat(f, "nginx", ParserOptions{LogFormat: nginxCacheFormat}, "cache")
}

func FuzzApacheCombined(f *testing.F) { fuzzFormat(f, "apache-combined", ParserOptions{}, "") }

func FuzzApacheLogFormat(f *testing.F) {
	fuzzFormat(f, "apache", ParserOptions{LogFormat: apacheCacheFormat}, "cache")
}

func FuzzLogpipeJob(f *testing.F) { fuzzFormat(f, "logpipe-job", ParserOptions{}, "") }

func FuzzJobJSON(f *testing.F) { fuzzFormat(f, "job-json", ParserOptions{}, "loggers") }

func FuzzJobLogfmt(f *testing.F) { fuzzFormat(f, "job-logfmt", ParserOptions{}, "") }

func FuzzK8sJobEvents(f *testing.F) { fuzzFormat(f, "k8s-job-events", ParserOptions{}, "") }

// FuzzNginxFormatString fuzzes the log_format compiler with a line.
func FuzzNginxFormatString(f *testing.F) {
	f.Add(NginxCombined, []byte(`203.0.113.24 - - [15/Jun/2017:18:41:07 +0900] "GET / HTTP/1.1" 200 1 "-" "-"`))
	f.Add(`$msec "$scheme://$host$request_uri" $status`, []byte(`1497519667.565 "https://a.example/x?y" 200`))
	f.Add(ApacheCombined, []byte(`203.0.113.24 - - [15/Jun/2017:18:41:07 +0900] "GET / HTTP/1.1" 200 1 "-" "-"`))
	f.Fuzz(func(t *testing.T, format string, line []byte) {
		for _, mk := range []func(string) (*AccessLog, error){
			func(s string) (*AccessLog, error) { return NewNginx(s, "nginx") },
			NewApache,
		} {
			p, err := mk(format)
			if err != nil {
				continue
			}
			var r CDNRequest
			if err := p.Parse(line, &r); err != nil && !errors.Is(err, ErrSkip) && err.Error() == "" {
				t.Fatal("error without a reason")
			}
		}
	})
}
