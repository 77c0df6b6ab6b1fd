package transform

import (
	"strings"
	"testing"
	"time"
)

// customFastly is a Fastly JSON line a user wrote with their own keys
// (issue 17): cache_status, response_bytes, time_elapsed in ms.
const customFastly = `{"ts":"2017-06-15T09:41:07Z","client_ip":"203.0.113.24","host":"www.example.jp","url":"/mypage/?tab=orders","request_method":"GET","cache_status":"HIT-WAIT","response_status":200,"response_bytes":"18342","time_elapsed":12.5,"origin_ms":"140","response_cache_control":"no-cache","response_set_cookie":"sid=1","request_cookie":"session_id=9f8e7d6c5b4a"}`

func TestFieldMap(t *testing.T) {
	tests := []struct {
		name   string
		format string
		fm     map[string]string
		line   string
		check  func(t *testing.T, r *CDNRequest)
	}{
		{
			name:   "fastly own keys, ms duration",
			format: "fastly-json",
			fm:     map[string]string{"time": "ts", "cache_status": "cache_status", "bytes": "response_bytes", "duration": "time_elapsed:ms", "origin_ms": "origin_ms"},
			line:   customFastly,
			check: func(t *testing.T, r *CDNRequest) {
				if r.CacheStatus != CacheHit || !r.Collapsed || r.CacheRaw != "HIT-WAIT" {
					t.Errorf("cache = %s/%v/%q, want hit, collapsed, HIT-WAIT", r.CacheStatus, r.Collapsed, r.CacheRaw)
				}
				if r.BytesSent != 18342 || r.DurationMs != 12.5 || r.OriginMs != 140 {
					t.Errorf("bytes %d duration %v origin %v, want 18342, 12.5, 140", r.BytesSent, r.DurationMs, r.OriginMs)
				}
				if !r.Time.Equal(time.Date(2017, 6, 15, 9, 41, 7, 0, time.UTC)) {
					t.Errorf("time = %v", r.Time)
				}
			},
		},
		{
			name:   "fastly format's own key names as names, seconds",
			format: "fastly-json",
			fm:     map[string]string{"timestamp": "ts", "response_state": "cache_status", "time_elapsed_usec": "time_elapsed:s"},
			line:   customFastly,
			check: func(t *testing.T, r *CDNRequest) {
				if r.CacheStatus != CacheHit || r.DurationMs != 12500 {
					t.Errorf("cache %s duration %v, want hit, 12500", r.CacheStatus, r.DurationMs)
				}
			},
		},
		{
			name:   "fastly mapped key wins over a default one",
			format: "fastly-json",
			fm:     map[string]string{"cache_status": "state"},
			line:   `{"timestamp":"2017-06-15T09:41:07Z","url":"/a","response_status":200,"state":"PASS","response_state":"HIT"}`,
			check: func(t *testing.T, r *CDNRequest) {
				if r.CacheStatus != CachePass {
					t.Errorf("cache = %s, want pass (from the mapped key)", r.CacheStatus)
				}
			},
		},
		{
			name:   "fastly epoch ms time",
			format: "fastly-json",
			fm:     map[string]string{"time": "start:ms"},
			line:   `{"start":1497519667565,"url":"/a","response_status":200}`,
			check: func(t *testing.T, r *CDNRequest) {
				if r.Time.UnixMilli() != 1497519667565 {
					t.Errorf("time = %v", r.Time)
				}
			},
		},
		{
			name:   "cloudflare subset with renamed keys and a header",
			format: "cloudflare-json",
			fm:     map[string]string{"time": "when:rfc3339", "cache_status": "cache", "status": "code", "cache_control": "cc", "bytes": "size"},
			line:   `{"when":"2017-06-15T09:41:07Z","cache":"hit","code":"200","ClientRequestURI":"/mypage/","cc":"private","size":"99","ResponseHeaders":{"vary":"Cookie"}}`,
			check: func(t *testing.T, r *CDNRequest) {
				if r.CacheStatus != CacheHit || r.Status != 200 || r.CacheControl != "private" || r.Vary != "Cookie" || r.BytesSent != 99 {
					t.Errorf("got cache %s status %d cc %q vary %q bytes %d", r.CacheStatus, r.Status, r.CacheControl, r.Vary, r.BytesSent)
				}
			},
		},
		{
			name:   "akamai rfc3339 time and custom cache-control",
			format: "akamai-datastream2",
			fm:     map[string]string{"time": "time:rfc3339", "cache_control": "cc", "set_cookie": "sc", "duration": "ttfb:s"},
			line:   `{"time":"2017-06-15T09:41:07.5Z","statusCode":"200","reqPath":"/mypage/","cacheStatus":"1","cc":"no-cache","sc":"a=b","ttfb":"0.25"}`,
			check: func(t *testing.T, r *CDNRequest) {
				if r.Time.UnixMilli() != 1497519667500 || r.CacheControl != "no-cache" || !r.SetCookie || r.DurationMs != 250 || r.CacheStatus != CacheHit {
					t.Errorf("got time %v cc %q setcookie %v duration %v cache %s", r.Time, r.CacheControl, r.SetCookie, r.DurationMs, r.CacheStatus)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewParserWith(tt.format, ParserOptions{FieldMap: tt.fm})
			if err != nil {
				t.Fatal(err)
			}
			var r CDNRequest
			if err := p.(CDNParser).Parse([]byte(tt.line), &r); err != nil {
				t.Fatal(err)
			}
			tt.check(t, &r)
		})
	}
}

func TestFieldMapErrors(t *testing.T) {
	tests := []struct {
		format string
		fm     map[string]string
		want   string
	}{
		{"fastly-json", map[string]string{"cache_stat": "x"}, `unknown field "cache_stat" for format fastly-json (known: time, `},
		{"cloudflare-json", map[string]string{"bytes": ""}, `field "bytes" has an empty key`},
		{"fastly-json", map[string]string{"host": "h:ms"}, "host takes no unit"},
		{"fastly-json", map[string]string{"duration": "d:rfc3339"}, "duration is a duration"},
		{"fastly-json", map[string]string{"host": "x", "url": "x"}, `key "x" is mapped to both`},
		{"nginx", map[string]string{"host": "x"}, `format "nginx" takes no field_map option`},
	}
	for _, tt := range tests {
		_, err := NewParserWith(tt.format, ParserOptions{FieldMap: tt.fm})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s %v: err = %v, want %q", tt.format, tt.fm, err, tt.want)
		}
	}
	// A value that the declared unit cannot read names the key.
	p, _ := NewParserWith("fastly-json", ParserOptions{FieldMap: map[string]string{"duration": "el:ms"}})
	var r CDNRequest
	err := p.(CDNParser).Parse([]byte(`{"timestamp":"2017-06-15T09:41:07Z","url":"/","response_status":200,"el":"fast"}`), &r)
	if err == nil || !strings.Contains(err.Error(), `"el" (field_map duration): "fast" is not a number of ms`) {
		t.Errorf("err = %v", err)
	}
}

// A field map without conversions keeps Fastly's decoder allocation-free.
func TestFastlyMappedAllocs(t *testing.T) {
	p, err := NewParserWith("fastly-json", ParserOptions{FieldMap: map[string]string{"time": "ts", "cache_status": "cache_status", "bytes": "response_bytes"}})
	if err != nil {
		t.Fatal(err)
	}
	line := []byte(customFastly)
	var r CDNRequest
	allocs := testing.AllocsPerRun(200, func() {
		r.Reset()
		if err := p.(CDNParser).Parse(line, &r); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("mapped Parse allocates %.0f times per line, want 0", allocs)
	}
	if r.CacheStatus != CacheHit || r.BytesSent != 18342 {
		t.Errorf("cache %s bytes %d", r.CacheStatus, r.BytesSent)
	}
}

func TestSuggestField(t *testing.T) {
	for _, tt := range []struct{ format, key, want string }{
		{"fastly-json", "cache_status", "cache_status"},
		{"fastly-json", "response_bytes", "bytes"},
		{"fastly-json", "time_elapsed", "duration"},
		{"fastly-json", "CacheStatus", "cache_status"},
		{"cloudflare-json", "cache_status", "cache_status"},
		{"fastly-json", "zzz", ""},
	} {
		if got := SuggestField(tt.format, tt.key); got != tt.want {
			t.Errorf("SuggestField(%s, %s) = %q, want %q", tt.format, tt.key, got, tt.want)
		}
	}
}

// BenchmarkFastlyFieldMap compares the default key set with mapped ones:
// renames and duration units stay on the fast path, a time unit takes
// the general path.
func BenchmarkFastlyFieldMap(b *testing.B) {
	def := goldenLines(b, "fastly-json", "")[0]
	for _, c := range []struct {
		name string
		fm   map[string]string
		line []byte
	}{
		{"default", nil, def},
		{"renamed", map[string]string{"time": "ts", "cache_status": "cache_status", "bytes": "response_bytes", "duration": "time_elapsed"}, []byte(customFastly)},
		{"duration-unit", map[string]string{"time": "ts", "cache_status": "cache_status", "bytes": "response_bytes", "duration": "time_elapsed:ms"}, []byte(customFastly)},
		{"time-unit", map[string]string{"time": "ts:rfc3339", "cache_status": "cache_status", "bytes": "response_bytes", "duration": "time_elapsed:ms"}, []byte(customFastly)},
	} {
		b.Run(c.name, func(b *testing.B) {
			p, err := NewParserWith("fastly-json", ParserOptions{FieldMap: c.fm})
			if err != nil {
				b.Fatal(err)
			}
			cp := p.(CDNParser)
			var r CDNRequest
			b.SetBytes(int64(len(c.line)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				r.Reset()
				if err := cp.Parse(c.line, &r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// FuzzFastlyFieldMap checks that a mapped Fastly parser gives the same
// record whichever path decodes a line: the fast one (renames and
// duration units read in place) or the general one (keys renamed and
// values converted, then decoded by goccy/go-json).
func FuzzFastlyFieldMap(f *testing.F) {
	f.Add([]byte(customFastly))
	f.Add([]byte(`{"ts":"2017-06-15T09:41:07Z","url":"/a","response_status":200,"time_elapsed":"0.1","origin_ms":null,"cache_status":"MISS"}`))
	f.Add([]byte(`{"ts":"2017-06-15T09:41:07Z","url":"/a","response_status":200,"time_elapsed":"fast"}`))
	f.Add([]byte(`{"ts":"2017-06-15T09:41:07Z","url":"/a","response_status":200,"time_elapsed":1e3,"response_state":"HIT","cache_status":"PASS"}`))
	fm := map[string]string{"time": "ts", "cache_status": "cache_status", "bytes": "response_bytes", "duration": "time_elapsed:ms", "origin_ms": "origin_ms:s"}
	p, err := NewParserWith("fastly-json", ParserOptions{FieldMap: fm})
	if err != nil {
		f.Fatal(err)
	}
	mapped := p.(FastlyJSON)
	f.Fuzz(func(t *testing.T, line []byte) {
		var fast, general CDNRequest
		errFast := mapped.Parse(line, &fast)
		rewritten, errRewrite := mapped.keys.rewrite(line)
		var errGeneral error
		if errRewrite != nil {
			errGeneral = errRewrite
		} else {
			errGeneral = FastlyJSON{}.Parse(rewritten, &general)
		}
		if (errFast == nil) != (errGeneral == nil) {
			t.Fatalf("paths disagree on %q: fast %v, general %v", line, errFast, errGeneral)
		}
		if errFast == nil && fast != general {
			t.Fatalf("paths disagree on %q:\nfast    %+v\ngeneral %+v", line, fast, general)
		}
	})
}
