package transform

import (
	"bytes"
	"strings"

	"github.com/logpipe/logpipe/transform/redact"
)

// RedactRules configure the redaction pass (package redact) that every
// stored value goes through.
type RedactRules struct {
	// SecretParams replaces redact.DefaultSecretParams when not empty:
	// parameter and key names whose values are removed in any URL, JSON,
	// logfmt or header text.
	SecretParams []string
	// Patterns are extra patterns, removed or hashed.
	Patterns []redact.Pattern
	// NoRawDeadLetters stores no part of a rejected line: ingest_errors.raw
	// holds only [line:HEX], the keyed hash of the whole line.
	NoRawDeadLetters bool
}

// newRedactor builds the Enricher's redactor: the hash key, and the
// session cookie names hashed as sessions wherever they appear.
func newRedactor(cfg EnrichConfig) (*redact.Redactor, error) {
	return redact.New(redact.Config{
		Key:           cfg.HashKey,
		SecretParams:  cfg.Redact.SecretParams,
		SessionParams: cfg.SessionCookies,
		Patterns:      cfg.Redact.Patterns,
	})
}

// Redactor returns the redaction pass the Enricher applies (safe for
// concurrent use), for log lines and other text outside records.
func (e *Enricher) Redactor() *redact.Redactor { return e.red }

// Redact returns raw with secrets removed and personal values replaced by
// keyed hashes (see package redact). It is for lines that failed to parse
// and are kept in ingest_errors, scanned as bytes: a malformed line does
// not put a secret in clear into ClickHouse.
func (e *Enricher) Redact(raw []byte) []byte {
	return e.red.Bytes(raw)
}

// DeadLetter returns what ingest_errors.raw keeps of a rejected line: its
// first max bytes redacted, or, with NoRawDeadLetters, only the keyed
// hash of the whole line ([line:HEX]).
func (e *Enricher) DeadLetter(raw []byte, max int) []byte {
	if e.noRaw {
		return appendLineMarker(nil, e.red.Hash(string(raw)))
	}
	if len(raw) <= max {
		return e.red.Bytes(raw)
	}
	// Redact past the cut, then cut: a secret that straddles the cut
	// would otherwise be kept in part (the user of an e-mail address).
	out := e.red.Bytes(raw[:min(len(raw), max+deadLetterMargin)])
	return out[:min(len(out), max)]
}

// deadLetterMargin is how far past the cut a dead letter is redacted:
// longer than any secret the pass recognises.
const deadLetterMargin = 8 << 10

func appendLineMarker(b []byte, h uint64) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, "[line:"...)
	for shift := 60; shift >= 0; shift -= 4 {
		b = append(b, hexDigits[(h>>uint(shift))&0xf])
	}
	return append(b, ']')
}

// RedactString redacts a text value that is not a record field (an error
// reason, a log message).
func (e *Enricher) RedactString(s string) string { return e.red.String(s) }

// RedactReason redacts a parser's error message about line. Parsers quote
// offending values cut short ("/u/taro.yamad..."): a cut value is too
// short to be recognised, so it is looked up in the line, redacted whole,
// and cut again at the same length.
func (e *Enricher) RedactReason(reason string, line []byte) string {
	out := e.red.String(reason)
	for from := 0; ; {
		k := strings.Index(out[from:], `..."`)
		if k < 0 {
			return out
		}
		k += from
		from = k + 4
		// The cut value: after the last quote, escape or marker end.
		q := strings.LastIndexAny(out[:k], `"\]`)
		if q < 0 || k-q-1 < 4 {
			continue
		}
		snippet := out[q+1 : k]
		i := bytes.Index(line, []byte(snippet))
		if i < 0 {
			continue
		}
		end := i + len(snippet)
		for end < len(line) && end-i < 1024 && !bytes.ContainsRune([]byte(" \t\"'<>,;|"), rune(line[end])) {
			end++
		}
		whole := string(line[i:end])
		red := e.red.String(whole)
		if red == whole {
			continue
		}
		cut := red[:min(len(red), len(snippet))]
		out = out[:q+1] + cut + out[k:]
		from = q + 1 + len(cut) + 4
	}
}

// redactCDN redacts every free-text column of a request, after the
// derived fields (template, class, flags) were computed from the clear
// values. Clean values are kept as they are, without allocating.
func (e *Enricher) redactCDN(r *CDNRequest) {
	pi, ui := e.pathInfo(r.Path), e.uaInfo(r.UserAgent)
	e.redactCDNWith(r, &pi, &ui)
}

// redactCDNWith is redactCDN with the cached derivations of r.Path and
// r.UserAgent (pathInfo, uaInfo: the redacted path, template and user
// agent are remembered with them, so each is hashed once per record).
func (e *Enricher) redactCDNWith(r *CDNRequest, pi *pathInfo, ui *uaInfo) {
	red := e.red
	// Values that differ from request to request are scanned each time.
	for _, p := range [...]*string{&r.RequestID, &r.Query, &r.ETag} {
		if *p != "" {
			*p = red.String(*p)
		}
	}
	// Paths repeat: the redacted path and template come from the path
	// cache. A template that is not the path's own (set by the caller)
	// is redacted as the cache would.
	path := r.Path
	r.Path = pi.redPath
	if r.PathTemplate == pi.template {
		r.PathTemplate = pi.redTemplate
	} else {
		r.PathTemplate = e.redactTemplate(r.PathTemplate, path, r.Path)
	}
	// Values that repeat (headers, user agents, referers) are scanned
	// once and remembered: a map lookup costs less than a scan.
	for i, p := range [...]*string{
		&r.Service, &r.ConfigVersion, &r.POP, &r.Host, &r.Scheme, &r.Protocol, &r.CacheRaw,
		&r.ContentType, &r.CacheControl, &r.Expires, &r.Vary, &r.Referer, &r.Country,
	} {
		if *p == "" {
			continue
		}
		// Most records repeat the previous record's value of a field:
		// a comparison costs less than a map lookup.
		if m := &e.redLast[i]; *p == m.in {
			*p = m.out
			continue
		}
		*p = e.redactCached(*p, &e.redLast[i])
	}
	r.UserAgent = ui.red
	if !plausibleMethod(r.Method) {
		r.Method = "[redacted:method]" // upper-cased already: a token in it could no longer be recognised
	}
}

// redactTemplate returns the stored form of template, the template of
// path (redPath: path redacted). The built-in template of a clean path is
// clean (it only replaces whole segments by :id, :hex, ...): it is
// scanned only when the path was not clean or user template rules may
// have rearranged it.
func (e *Enricher) redactTemplate(template, path, redPath string) string {
	if template != "" && (redPath != path || len(e.templates) > 0) {
		return e.red.String(template)
	}
	return template
}

// redactCached is red.String through the Enricher's cache. A clean
// value is remembered in last as well (the cache's copy: s may alias a
// buffer that is reused).
func (e *Enricher) redactCached(s string, last *redMemo) string {
	if v, ok := e.redCache[s]; ok {
		if len(v) == len(s) && v == s {
			*last = redMemo{v, v}
		}
		return v
	}
	v := e.red.String(s)
	if len(e.redCache) >= cacheSize {
		clear(e.redCache)
	}
	key := strings.Clone(s) // s may alias a buffer that is reused
	if v == s {
		v = key
	}
	e.redCache[key] = v
	*last = redMemo{key, v}
	return v
}

// redMemo is the last value of a field and its redacted form.
type redMemo struct{ in, out string }

// redFields is the number of fields redactCDNWith redacts through
// redactCached.
const redFields = 13

// redactJob redacts every free-text field of a job event.
func (e *Enricher) redactJob(ev *JobEvent) {
	red := e.red
	for _, p := range [...]*string{
		&ev.Job, &ev.RunID, &ev.Host, &ev.Step, &ev.StepStatus, &ev.Error, &ev.ErrorClass,
		&ev.Level, &ev.Message,
	} {
		if *p != "" {
			*p = red.String(*p)
		}
	}
	for i, s := range ev.CounterNames {
		ev.CounterNames[i] = red.String(s)
	}
	for i := range ev.LabelKeys {
		if i < len(ev.LabelValues) {
			ev.LabelKeys[i], ev.LabelValues[i] = red.Pair(ev.LabelKeys[i], ev.LabelValues[i])
		} else {
			ev.LabelKeys[i] = red.String(ev.LabelKeys[i])
		}
	}
}

// plausibleMethod reports an HTTP method token: up to 24 letters, - or _.
func plausibleMethod(m string) bool {
	if len(m) > 24 {
		return false
	}
	for i := 0; i < len(m); i++ {
		if c := m[i]; !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
