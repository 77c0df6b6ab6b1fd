package transform

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// FieldError is an invalid option, named as the configuration file names
// it (format, log_format, fields, field_map, path_templates[0].match).
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

// CheckParser reports every problem of a format and its options, each a
// *FieldError, without building the parser; NewParserWith stops at the
// first of the same problems.
func CheckParser(format string, opts ParserOptions) []error {
	if _, err := NewParser(format); err != nil {
		return []error{&FieldError{"format", err}}
	}
	var errs []error
	for _, o := range []struct {
		field string
		set   bool
		opts  ParserOptions
	}{
		{"log_format", opts.LogFormat != "", ParserOptions{LogFormat: opts.LogFormat}},
		{"fields", len(opts.Fields) > 0, ParserOptions{Fields: opts.Fields}},
		{"field_map", len(opts.FieldMap) > 0, ParserOptions{FieldMap: opts.FieldMap}},
	} {
		if !o.set {
			continue
		}
		if _, err := NewParserWith(format, o.opts); err != nil {
			errs = append(errs, &FieldError{o.field, errors.New(strings.TrimPrefix(err.Error(), o.field+": "))})
		}
	}
	return errs
}

// Check reports every problem of the enrichment rules, each a
// *FieldError; the hash key is the caller's to check. NewEnricher fails
// on the same problems.
func (cfg EnrichConfig) Check() []error {
	var errs []error
	for i, t := range cfg.PathTemplates {
		if _, err := regexp.Compile(t.Match); err != nil {
			errs = append(errs, &FieldError{fmt.Sprintf("path_templates[%d].match", i), err})
		}
	}
	return errs
}
