package config

import (
	"cmp"

	"github.com/logpipe/logpipe/transform"
	"github.com/logpipe/logpipe/transform/redact"
)

// This file is the one translation of the configuration into the options
// of the transform packages; those packages validate their own options
// (transform.CheckParser, transform.CheckEnrich, redact.New), naming each
// error by the option's name, which is the YAML field's.

// DisplayName is the stream's name, or its topic when it has none.
func (s Stream) DisplayName() string { return cmp.Or(s.Name, s.Topic) }

// ParserOptions are the stream's format options.
func (s Stream) ParserOptions() transform.ParserOptions {
	return transform.ParserOptions{LogFormat: s.LogFormat, Fields: s.Fields, FieldMap: s.FieldMap}
}

// EnrichConfig is the enrichment the configuration describes: the
// enrich section, the hash key and the redact section.
func (c Config) EnrichConfig() transform.EnrichConfig {
	ec := transform.EnrichConfig{
		HashKey:         c.HashKey(),
		SessionCookies:  c.Enrich.SessionCookies,
		DropQueryParams: c.Enrich.DropQueryParams,
		Redact: transform.RedactRules{
			SecretParams:     c.Redact.SecretParams,
			Patterns:         c.redactPatterns(),
			NoRawDeadLetters: c.Redact.DeadLetterRaw == "none",
		},
	}
	for _, p := range c.Enrich.PathClasses {
		ec.PathClasses = append(ec.PathClasses, transform.PathClassRule{Class: p.Class, Patterns: p.Patterns})
	}
	for _, t := range c.Enrich.PathTemplates {
		ec.PathTemplates = append(ec.PathTemplates, transform.PathTemplateRule{Match: t.Match, Replace: t.Replace})
	}
	return ec
}

// RedactConfig is the redaction pass for text outside records (alert
// bodies, logs), hashing with key.
func (c Config) RedactConfig(key []byte) redact.Config {
	return redact.Config{Key: key, SecretParams: c.Redact.SecretParams, SessionParams: c.Enrich.SessionCookies, Patterns: c.redactPatterns()}
}

func (c Config) redactPatterns() []redact.Pattern {
	var ps []redact.Pattern
	for _, p := range c.Redact.Patterns {
		ps = append(ps, redact.Pattern{Name: p.Name, Regexp: p.Regexp, Hash: p.Hash})
	}
	return ps
}
