package transform

import (
	"fmt"
	"regexp"
)

// Patterns for Redact. They are read-only after start.
var (
	redactIPv4  = regexp.MustCompile(`\b(?:\d{1,3}\.){3}\d{1,3}\b`)
	redactIPv6  = regexp.MustCompile(`\b(?:[0-9A-Fa-f]{1,4}:){3,7}[0-9A-Fa-f]{1,4}\b`)
	redactJSON  = regexp.MustCompile(`(?i)("[A-Za-z_-]*(?:cookie|authorization|token|session|password|secret|client_ip|c-ip|clientip)[A-Za-z_-]*"\s*:\s*)"(?:[^"\\]|\\.)*"`)
	redactPairs = regexp.MustCompile(`(?i)\b((?:[A-Za-z_]*(?:token|session|password|secret|sid)[A-Za-z_]*|cookie|authorization)[=:]\s*)([^&;\s"',]+)`)
)

// Redact returns raw with personal values replaced by keyed hashes: IP
// addresses, and the values of JSON keys or key=value pairs that name
// cookies, tokens, sessions, passwords or client addresses. It is for
// lines that failed to parse and are kept in ingest_errors: best effort,
// so that a malformed line does not put a secret in clear into ClickHouse.
func (e *Enricher) Redact(raw []byte) []byte {
	hash := func(b []byte) []byte { return []byte(fmt.Sprintf("hmac:%016x", e.Hash(string(b)))) }
	out := redactJSON.ReplaceAllFunc(raw, func(m []byte) []byte {
		sub := redactJSON.FindSubmatchIndex(m)
		key := m[:sub[3]]
		return append(append(append([]byte{}, key...), '"'), append(hash(m[sub[3]:]), '"')...)
	})
	out = redactPairs.ReplaceAllFunc(out, func(m []byte) []byte {
		sub := redactPairs.FindSubmatchIndex(m)
		return append(append([]byte{}, m[:sub[3]]...), hash(m[sub[4]:sub[5]])...)
	})
	out = redactIPv4.ReplaceAllFunc(out, hash)
	out = redactIPv6.ReplaceAllFunc(out, hash)
	return out
}
