package transform

import (
	"strconv"
	"strings"
)

// dash maps the "-" placeholder of access logs to "".
func dash(s string) string {
	if s == "-" {
		return ""
	}
	return s
}

// percentDecode decodes %XX escapes once and leaves malformed ones as
// they are (log fields are evidence: never reject a line for them). "+"
// is kept: it is a space only in form-encoded query strings.
func percentDecode(s string) string {
	i := strings.IndexByte(s, '%')
	if i < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	b = append(b, s[:i]...)
	for ; i < len(s); i++ {
		c := s[i]
		if c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
			continue
		}
		b = append(b, c)
	}
	return string(b)
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// parseStatus reads an HTTP status; "000" (client gave up) is 0.
func parseStatus(s string) (uint16, bool) {
	if len(s) != 3 {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return 0, false
	}
	return uint16(n), true
}

// optUint reads an optional unsigned number; "", "-" and junk give 0.
func optUint(s string) uint64 {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// optFloat reads an optional number; "", "-" and junk give 0.
func optFloat(s string) float64 {
	if s == "" || s == "-" {
		return 0
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != f || f > 1e15 || f < -1e15 {
		return 0
	}
	return f
}

// clampAge turns a header value into an Age in seconds.
func clampAge(s string) uint32 {
	n := optUint(strings.TrimSpace(s))
	return uint32(min(n, 1<<32-1))
}

// splitURI splits a request target into path and query.
func splitURI(uri string) (path, query string) {
	path, query, _ = strings.Cut(uri, "?")
	return path, query
}
