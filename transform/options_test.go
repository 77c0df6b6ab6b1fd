package transform

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckParser(t *testing.T) {
	for _, c := range []struct {
		format string
		opts   ParserOptions
		want   []string // "field: message prefix", in order
	}{
		{"fastly-json", ParserOptions{}, nil},
		{"fastly-json", ParserOptions{FieldMap: map[string]string{"cache_status": "cs", "duration": "t:ms"}}, nil},
		{"fastly-jsn", ParserOptions{LogFormat: "$x"}, []string{`format: unknown format "fastly-jsn"`}},
		{"fastly-json", ParserOptions{LogFormat: "$remote_addr", FieldMap: map[string]string{"cache_stat": "x"}}, []string{
			`log_format: format "fastly-json" takes no log_format option`,
			`field_map: unknown field "cache_stat" for format fastly-json`,
		}},
		{"nginx-combined", ParserOptions{Fields: []string{"a"}}, []string{`fields: format "nginx-combined" takes no fields option`}},
		{"job-json", ParserOptions{FieldMap: map[string]string{"job": ""}}, []string{`field_map: field "job" has an empty key`}},
	} {
		errs := CheckParser(c.format, c.opts)
		if len(errs) != len(c.want) {
			t.Errorf("CheckParser(%s, %+v) = %v, want %d errors %q", c.format, c.opts, errs, len(c.want), c.want)
			continue
		}
		for i, err := range errs {
			var fe *FieldError
			if !errors.As(err, &fe) || !strings.HasPrefix(err.Error(), c.want[i]) {
				t.Errorf("CheckParser(%s, %+v)[%d] = %v, want a FieldError starting %q", c.format, c.opts, i, err, c.want[i])
			}
		}
		// NewParserWith refuses exactly what CheckParser reports.
		if _, err := NewParserWith(c.format, c.opts); (err != nil) != (len(c.want) > 0) {
			t.Errorf("NewParserWith(%s, %+v) = %v, CheckParser = %v", c.format, c.opts, err, errs)
		}
	}
}

func TestEnrichConfigCheck(t *testing.T) {
	cfg := EnrichConfig{HashKey: []byte("0123456789abcdef"), PathTemplates: []PathTemplateRule{
		{Match: `^/items/\d+`, Replace: "/items/:id"},
		{Match: `^/items/(\d+`, Replace: "/items/:id"},
	}}
	errs := cfg.Check()
	if len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), "path_templates[1].match: ") {
		t.Fatalf("Check = %v, want one error for path_templates[1].match", errs)
	}
	if _, err := NewEnricher(cfg); err == nil || !strings.Contains(err.Error(), "path_templates[1].match") {
		t.Errorf("NewEnricher = %v, want the error Check reports", err)
	}
	cfg.PathTemplates = cfg.PathTemplates[:1]
	if errs := cfg.Check(); len(errs) != 0 {
		t.Errorf("Check of valid rules = %v", errs)
	}
}
