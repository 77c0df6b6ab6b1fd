// Package redact removes secrets and personal values from text before it
// is stored, logged or sent: the one redaction pass of logpipe, used for
// row columns, dead letters, log lines, alert bodies and `logpipe check`.
//
// Values analysts count are replaced by a keyed hash (HMAC-SHA256 with the
// configured key, first 8 bytes, the same hash as the session_hash and
// client_ip_hash columns): client IP addresses ([ip:HEX]), e-mail
// addresses ([email:HEX]) and session values ([session:HEX]). Everything
// else that is secret is removed, leaving a marker: [redacted:KIND].
//
// A Redactor is safe for concurrent use. Text it finds clean is returned
// as it is, without allocating.
package redact

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"regexp"
	"strings"
	"sync"
)

// DefaultSecretParams are the parameter and key names whose values are
// removed wherever they appear as name=value or "name": value (query
// strings of any URL, logfmt, JSON, headers).
var DefaultSecretParams = []string{
	"token", "access_token", "refresh_token", "id_token", "code", "key", "api_key", "apikey",
	"secret", "client_secret", "password", "passwd", "pwd", "sig", "signature", "auth",
	"x-amz-signature", "x-amz-security-token", "x-goog-signature",
}

// DefaultSessionParams are the names whose values are hashed as a session
// ([session:HEX]) rather than removed.
var DefaultSessionParams = []string{"session", "sessionid", "session_id", "sid", "phpsessid", "jsessionid", "_session"}

// Config configures a Redactor.
type Config struct {
	// Key is the key of the keyed hash; at least 16 bytes.
	Key []byte
	// SecretParams replaces DefaultSecretParams when not empty.
	SecretParams []string
	// SessionParams are added to DefaultSessionParams (typically the
	// configured session cookie names).
	SessionParams []string
	// Patterns are extra patterns, applied after the built-in ones.
	Patterns []Pattern
}

// Pattern is a user pattern: every match of Regexp is replaced by
// [redacted:NAME], or by [NAME:HEX] (the keyed hash of the match) when
// Hash is set.
type Pattern struct {
	Name   string
	Regexp string
	Hash   bool
}

type compiled struct {
	name string
	re   *regexp.Regexp
	hash bool
}

// Redactor redacts text. See the package documentation.
type Redactor struct {
	key      []byte
	macs     sync.Pool
	secret   map[string]bool
	session  map[string]bool
	maxExact int // longest name in secret and session
	patterns []compiled
}

// New checks cfg and returns a Redactor.
func New(cfg Config) (*Redactor, error) {
	if len(cfg.Key) < 16 {
		return nil, fmt.Errorf("redact: hash key has %d bytes, want at least 16", len(cfg.Key))
	}
	r := &Redactor{key: append([]byte(nil), cfg.Key...), secret: map[string]bool{}, session: map[string]bool{}}
	r.macs.New = func() any { return hmac.New(sha256.New, r.key) }
	params := cfg.SecretParams
	if len(params) == 0 {
		params = DefaultSecretParams
	}
	for _, p := range params {
		r.secret[strings.ToLower(p)] = true
	}
	for _, p := range append(append([]string(nil), DefaultSessionParams...), cfg.SessionParams...) {
		r.session[strings.ToLower(p)] = true
	}
	for k := range r.secret {
		r.maxExact = max(r.maxExact, len(k))
	}
	for k := range r.session {
		r.maxExact = max(r.maxExact, len(k))
	}
	if errs := CheckPatterns(cfg.Patterns); len(errs) > 0 {
		return nil, fmt.Errorf("redact: %w", errs[0])
	}
	for _, p := range cfg.Patterns {
		r.patterns = append(r.patterns, compiled{p.Name, regexp.MustCompile(p.Regexp), p.Hash}) // CheckPatterns compiled it
	}
	return r, nil
}

// CheckPatterns reports every invalid pattern, each error naming its
// field as the configuration does (patterns[0].regexp: ...): a name of
// letters, digits, _ and -, and a regular expression that compiles and is
// not empty. New refuses the same patterns.
func CheckPatterns(ps []Pattern) []error {
	var errs []error
	for i, p := range ps {
		if !validKind(p.Name) {
			errs = append(errs, fmt.Errorf("patterns[%d].name: %q is not a name (letters, digits, _, -)", i, p.Name))
		}
		if p.Regexp == "" {
			errs = append(errs, fmt.Errorf("patterns[%d].regexp: an empty regular expression matches everywhere", i))
		} else if _, err := regexp.Compile(p.Regexp); err != nil {
			errs = append(errs, fmt.Errorf("patterns[%d].regexp: %q is not a regular expression: %w", i, p.Regexp, err))
		}
	}
	return errs
}

func validKind(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isWord(s[i]) && s[i] != '-' {
			return false
		}
	}
	return s != ""
}

// Hash returns the keyed hash of s (HMAC-SHA256, first 8 bytes, big
// endian); 0 for "". It equals transform.Enricher.Hash with the same key.
func (r *Redactor) Hash(s string) uint64 {
	if s == "" {
		return 0
	}
	m := r.macs.Get().(hash.Hash)
	m.Reset()
	m.Write([]byte(s))
	var sum [sha256.Size]byte
	h := binary.BigEndian.Uint64(m.Sum(sum[:0]))
	r.macs.Put(m)
	return h
}

// Mode says what kind of value is redacted.
type Mode uint8

const (
	// Text is any text: a log line, a message, a URL, a header.
	Text Mode = iota
	// UserAgent is a User-Agent header: product/1.2.3.4 is a version,
	// not an IPv4 address.
	UserAgent
	// Log is a log message: loopback, private and link-local addresses
	// (logpipe's own brokers and servers) are kept.
	Log
)

// String returns s redacted, or s itself when it holds nothing to redact.
func (r *Redactor) String(s string) string {
	return r.StringMode(s, Text)
}

// StringMode is String for a kind of value.
func (r *Redactor) StringMode(s string, m Mode) string {
	out, ok := r.scan(s, m)
	if len(r.patterns) > 0 {
		if ok {
			s = string(out)
		}
		s2, changed := r.applyPatterns(s)
		if changed || ok {
			return s2
		}
		return s
	}
	if !ok {
		return s
	}
	return string(out)
}

// Bytes returns b redacted: b itself when it holds nothing to redact,
// else a new slice.
func (r *Redactor) Bytes(b []byte) []byte {
	s := r.String(string(b))
	if len(s) == len(b) && s == string(b) {
		return b
	}
	return []byte(s)
}

func (r *Redactor) applyPatterns(s string) (string, bool) {
	changed := false
	for _, p := range r.patterns {
		if !p.re.MatchString(s) {
			continue
		}
		changed = true
		s = p.re.ReplaceAllStringFunc(s, func(m string) string {
			if p.hash {
				return r.hashMarker(p.name, m)
			}
			return "[redacted:" + p.name + "]"
		})
	}
	return s, changed
}

func (r *Redactor) hashMarker(kind, v string) string {
	return fmt.Sprintf("[%s:%016x]", kind, r.Hash(v))
}

// Marker kinds the scanner writes; text in these markers is never
// redacted again, so redaction is idempotent.
var markerPrefixes = []string{"[redacted:", "[ip:", "[email:", "[session:", "[line:"}
