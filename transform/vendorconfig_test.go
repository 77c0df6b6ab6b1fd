package transform

import (
	"os"
	"strings"
	"testing"
)

// TestVendorConfigCoverage: the line each printed vendor config writes
// parses with the stream options printed alongside, and every field
// logpipe uses is found in it, bar the ones the vendor cannot log.
func TestVendorConfigCoverage(t *testing.T) {
	for _, format := range VendorConfigFormats() {
		t.Run(format, func(t *testing.T) {
			vc, err := VendorConfigFor(format)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(vc.Sample, "%{") {
				t.Fatalf("sample keeps a placeholder: %s", vc.Sample)
			}
			p, err := NewParserWith(vc.Format, vc.Options)
			if err != nil {
				t.Fatal(err)
			}
			var r CDNRequest
			if err := p.(CDNParser).Parse([]byte(vc.Sample), &r); err != nil {
				t.Fatalf("sample does not parse: %v\n%s", err, vc.Sample)
			}
			e, err := NewEnricher(EnrichConfig{HashKey: []byte("0123456789abcdef0123"), SessionCookies: []string{"session_id"}, PathClasses: []PathClassRule{{Class: "personal", Patterns: []string{"/mypage*"}}}})
			if err != nil {
				t.Fatal(err)
			}
			e.CDN(&r)
			var found [CovCount]bool
			CDNCoverage(&r, &found)
			for f, ok := range found {
				missing := false
				for _, m := range vc.Missing {
					missing = missing || m == CoverageName(f)
				}
				if ok == missing {
					t.Errorf("field %s found=%v, want %v (record %+v)", CoverageName(f), ok, !missing, r)
				}
			}
			if !r.FlagPersonalCached {
				t.Errorf("the sample (a cached personal page) is not flagged: %+v", r)
			}
		})
	}
}

// TestFastlyFormatKeys: the printed Fastly format writes exactly the keys
// the fastly-json parser reads by default.
func TestFastlyFormatKeys(t *testing.T) {
	written := map[string]bool{}
	for _, f := range fastlyFields {
		written[f.key] = true
	}
	for _, k := range fastlyKeys {
		if !written[k.key] {
			t.Errorf("parser key %q is not in the printed format", k.key)
		}
		delete(written, k.key)
	}
	for k := range written {
		t.Errorf("printed format writes %q, which the parser does not read", k)
	}
	if !strings.Contains(fastlyVendorText(), "fastly_info.state") {
		t.Error("the Fastly format does not log fastly_info.state")
	}
}

// TestVendorConfigsInDocs: docs/formats.md shows each printed config as
// it is printed.
func TestVendorConfigsInDocs(t *testing.T) {
	b, err := os.ReadFile("../docs/formats.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, format := range VendorConfigFormats() {
		vc, _ := VendorConfigFor(format)
		if !strings.Contains(string(b), "```\n"+vc.Text+"```") {
			t.Errorf("docs/formats.md does not show `logpipe formats %s -vendor-config` as printed:\n%s", format, vc.Text)
		}
	}
}

// TestApacheEscapedLogFormat: the LogFormat as written in httpd.conf
// (quotes escaped) reads the same lines as the unescaped one.
func TestApacheEscapedLogFormat(t *testing.T) {
	p, err := NewParserWith("apache", ParserOptions{LogFormat: apacheLogpipeFormat})
	if err != nil {
		t.Fatal(err)
	}
	var r CDNRequest
	if err := p.(CDNParser).Parse([]byte(apacheSample), &r); err != nil {
		t.Fatal(err)
	}
	if r.CacheStatus != CacheHit || r.CacheControl != "no-cache" || !r.SetCookie {
		t.Errorf("%+v", r)
	}
}
