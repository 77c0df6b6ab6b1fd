package transform_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/logpipe/logpipe/transform"
)

// panicky is a CDN parser with a bug.
type panicky struct{}

func (panicky) Kind() transform.Kind { return transform.KindCDN }
func (panicky) Parse(line []byte, r *transform.CDNRequest) error {
	r.Host = string(line)
	var m map[string]int
	m["x"]++ // nil map: panics
	return nil
}

// hostOnly is a CDN parser of lines that name no vendor.
type hostOnly struct{}

func (hostOnly) Kind() transform.Kind { return transform.KindCDN }
func (hostOnly) Parse(line []byte, r *transform.CDNRequest) error {
	r.Host = string(line)
	return nil
}

func TestStage(t *testing.T) {
	e, err := transform.NewEnricher(transform.EnrichConfig{HashKey: []byte("stage-test-key-0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	p, err := transform.NewParser("fastly-json")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := transform.NewStage[transform.JobEvent](p, ""); ok {
		t.Error("a CDN format gives a stage of job events")
	}
	st, ok := transform.NewStage[transform.CDNRequest](p, "myvendor")
	if !ok {
		t.Fatal("fastly-json gives no stage of CDN requests")
	}
	var r transform.CDNRequest
	line := `{"timestamp":"2026-11-20T01:00:00Z","host":"shop.example","url":"/Mypage/1?token=x","request_method":"get","response_status":200,"response_state":"HIT"}`
	if err := st.Parse([]byte(line), &r); err != nil {
		t.Fatal(err)
	}
	if r.Vendor != "fastly" {
		t.Errorf("vendor %q, want the line's (fastly)", r.Vendor)
	}
	st.Enrich(e, &r)
	if r.Method != "GET" || r.PathTemplate == "" {
		t.Errorf("not enriched: method %q template %q", r.Method, r.PathTemplate)
	}
	// The record is reset before each line: nothing of the previous one
	// is left when a line fails.
	if err := st.Parse([]byte(`not json`), &r); err == nil {
		t.Fatal("not json parsed")
	}
	if r.Host != "" {
		t.Errorf("host %q kept from the previous line", r.Host)
	}
	// The stream's vendor fills in a line that names none.
	nst, _ := transform.NewStage[transform.CDNRequest](hostOnly{}, "myvendor")
	if err := nst.Parse([]byte("h"), &r); err != nil {
		t.Fatal(err)
	}
	if r.Vendor != "myvendor" {
		t.Errorf("vendor %q, want the stream's (myvendor)", r.Vendor)
	}
	bad, _ := transform.NewStage[transform.CDNRequest](panicky{}, "acme")
	err = bad.Parse([]byte("h"), &r)
	if err == nil || !strings.Contains(err.Error(), "parser panic") || errors.Is(err, transform.ErrSkip) {
		t.Errorf("panicking parser: %v, want a parser panic error", err)
	}
}
