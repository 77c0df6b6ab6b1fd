package chclient

import (
	"strings"
)

// String returns s as a ClickHouse string literal, in single quotes. A
// backslash and a quote are escaped with a backslash, and every control
// byte (below 0x20, and 0x7F) is written as \xHH, so that any byte string,
// not only UTF-8, reads back unchanged on every supported server
// (TestQuoteRoundTrip) and the SQL stays on one line.
func String(s string) string {
	return quote(s, '\'')
}

// Ident returns s as a ClickHouse identifier (a database, table or
// cluster name logpipe chose or was configured with): as it is when it is
// a plain identifier ([A-Za-z_][A-Za-z0-9_]*), so that SQL shown to people
// reads as they would write it, else as QuotedIdent.
func Ident(s string) string {
	if plain(s) {
		return s
	}
	return QuotedIdent(s)
}

// QuotedIdent returns s as a ClickHouse identifier, always in backquotes,
// escaped as String escapes: for names that may be keywords (the columns
// of a query someone wrote) and for SQL no one reads.
func QuotedIdent(s string) string {
	return quote(s, '`')
}

func plain(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func quote(s string, q byte) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte(q)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == q || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c == 0x7F:
			b.WriteString(`\x`)
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xF])
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte(q)
	return b.String()
}
