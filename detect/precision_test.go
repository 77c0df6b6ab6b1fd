package detect

import (
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/logpipe/logpipe/config"
	"github.com/logpipe/logpipe/sample"
	"github.com/logpipe/logpipe/tables"
	"github.com/logpipe/logpipe/transform"
)

// feed parses lines as the pipeline does (Fastly JSON, the default
// enrichment) and returns the templates with findings, and how many.
func feed(t testing.TB, d *Detector, lines []sample.Line) (map[string]int, int) {
	t.Helper()
	p, err := transform.NewParserWith("fastly-json", transform.ParserOptions{})
	if err != nil {
		t.Fatal(err)
	}
	def := config.Default()
	ec := transform.EnrichConfig{HashKey: []byte("precision-test-key-0123456789"), SessionCookies: def.Enrich.SessionCookies}
	for _, c := range def.Enrich.PathClasses {
		ec.PathClasses = append(ec.PathClasses, transform.PathClassRule{Class: c.Class, Patterns: c.Patterns})
	}
	e, err := transform.NewEnricher(ec)
	if err != nil {
		t.Fatal(err)
	}
	templates := map[string]int{}
	n := 0
	var r transform.CDNRequest
	for i, l := range lines {
		r.Reset()
		if err := p.(transform.CDNParser).Parse(l.Value, &r); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		e.CDN(&r)
		d.Observe(&r, tables.Meta{Topic: "cdn", Offset: int64(i)})
		for more := true; more; {
			select {
			case f := <-d.Findings():
				templates[f.Host+" | "+f.Template]++
				n++
			default:
				more = false
			}
		}
	}
	return templates, n
}

func keys(m map[string]int) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, ", ")
}

// TestPrecisionInMemory: ten minutes of normal traffic (60% of visitors
// logged in, their cookie on every request, on cached public pages;
// bots; static assets; personal pages passed) give no finding; the same
// traffic with /mypage* cached and collapsed gives findings on exactly
// the templates where a session got someone else's page.
func TestPrecisionInMemory(t *testing.T) {
	start := time.Date(2026, 11, 25, 5, 0, 0, 0, time.UTC)
	lines, sum := sample.Browsing(1, sample.BrowsingOptions{Start: start, Span: 10 * time.Minute})
	d := New(Options{})
	if got, n := feed(t, d, lines); n != 0 {
		t.Errorf("normal traffic (%d requests): %d findings on %s", sum.Requests, n, keys(got))
	}
	if len(sum.Leaked) != 0 {
		t.Fatalf("generator leaked without a leak: %v", sum.Leaked)
	}
	lines, sum = sample.Browsing(2, sample.BrowsingOptions{Start: start.Add(10 * time.Minute), Span: 3 * time.Minute, LeakFrom: start.Add(11 * time.Minute)})
	got, n := feed(t, d, lines)
	var want []string
	for k := range sum.Leaked {
		want = append(want, k)
	}
	sort.Strings(want)
	if keys(got) != strings.Join(want, ", ") || n != sum.LeakedResponses {
		t.Errorf("leak: %d findings on %s; want %d on %s", n, keys(got), sum.LeakedResponses, strings.Join(want, ", "))
	}
	t.Logf("%d leaked responses to %d sessions on %s", sum.LeakedResponses, sum.LeakedSessions, strings.Join(want, ", "))
}
