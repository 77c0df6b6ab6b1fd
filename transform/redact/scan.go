package redact

import (
	"net/netip"
	"strings"
)

// out builds the redacted copy of s lazily: nothing is allocated until the
// first replacement.
type out struct {
	s    string
	b    []byte
	last int // s[:last] is in b (or was clean)
}

func (o *out) put(from, to int, repl string) {
	if o.b == nil {
		o.b = make([]byte, 0, len(o.s)+32)
	}
	o.b = append(o.b, o.s[o.last:from]...)
	o.b = append(o.b, repl...)
	o.last = to
}

func (o *out) putHash(r *Redactor, from, to int, kind, value string) {
	if o.b == nil {
		o.b = make([]byte, 0, len(o.s)+32)
	}
	o.b = append(o.b, o.s[o.last:from]...)
	o.b = appendMarker(o.b, kind, r.Hash(value))
	o.last = to
}

func appendMarker(b []byte, kind string, h uint64) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '[')
	b = append(b, kind...)
	b = append(b, ':')
	for shift := 60; shift >= 0; shift -= 4 {
		b = append(b, hexDigits[(h>>uint(shift))&0xf])
	}
	return append(b, ']')
}

// boundary reports whether i starts a word in the output: at the start,
// after a non-word byte, or right after a replacement (markers end in ']').
func (o *out) boundary(i int) bool {
	return i == 0 || !isWord(o.s[i-1]) || i == o.last && o.b != nil
}

func (o *out) result() ([]byte, bool) {
	if o.b == nil {
		return nil, false
	}
	return append(o.b, o.s[o.last:]...), true
}

// Bytes that may start something to redact: everything else is skipped
// with one table lookup.
var interesting = func() (t [256]bool) {
	for _, c := range "[@%=:-0123456789" {
		t[c] = true
	}
	for _, p := range prefixRules {
		t[lower(p.prefix[0])], t[upper(p.prefix[0])] = true, true
	}
	for _, c := range "BbTt" {
		t[c] = true
	}
	return t
}()

// scan runs the built-in detectors over s, left to right.
func (r *Redactor) scan(s string, m Mode) ([]byte, bool) {
	o := out{s: s}
	v6checked := 0 // hex-and-colon runs that end before this were checked
	for i := 0; i < len(s); {
		c := s[i]
		if !interesting[c] {
			i++
			continue
		}
		switch c {
		case '[':
			if j := markerEnd(s, i); j > 0 {
				i = j
				continue
			}
		case '@':
			if a, b, ok := email(s, i, 1, o.last); ok {
				o.putHash(r, a, b, "email", emailValue(s[a:b]))
				i = b
				continue
			}
			if p, ok := userinfoPassword(s, i, o.last); ok {
				o.put(p, i, "[redacted:password]")
			}
		case '%':
			if i+2 < len(s) && s[i+1] == '4' && s[i+2] == '0' {
				if a, b, ok := email(s, i, 3, o.last); ok {
					o.putHash(r, a, b, "email", emailValue(s[a:b]))
					i = b
					continue
				}
			}
			if i+2 < len(s) && s[i+1] == '3' && (s[i+2] == 'D' || s[i+2] == 'd') {
				if j, ok := r.keyValue(&o, s, i, 3); ok {
					i = j
					continue
				}
			}
		case '=':
			if j, ok := r.keyValue(&o, s, i, 1); ok {
				i = j
				continue
			}
		case ':':
			if j, ok := r.keyValue(&o, s, i, 1); ok {
				i = j
				continue
			}
			// IPv6: the run of hex digits, colons and dots around.
			if i >= v6checked {
				a := i
				for a > o.last && isHexColon(s[a-1]) {
					a--
				}
				end := i
				for end < len(s) && isHexColon(s[end]) {
					end++
				}
				v6checked = end
				if x, y, ok := ipv6Run(s, a, end, o.boundary(a)); ok && y > i && !(m == Log && infraAddr(s[x:y])) {
					if x > i+1 {
						// The address starts after this colon: what lies
						// between is scanned on its own first.
						if red, ok := r.scan(s[i+1:x], m); ok {
							o.put(i+1, x, string(red))
						}
					}
					o.putHash(r, x, y, "ip", s[x:y])
					i = y
					continue
				}
			}
		case '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
			if o.boundary(i) {
				if end, ok := ipv4At(s, i); ok && !(m == UserAgent && i > 0 && s[i-1] == '/') && !(m == Log && infraAddr(s[i:end])) {
					o.putHash(r, i, end, "ip", s[i:end])
					i = end
					continue
				}
			}
		default:
			// Only a known two-byte prefix, or a scheme word at a word
			// boundary, can start a token: test that inline.
			if i+2 >= len(s) || !(pairs[uint16(lower(c))<<8|uint16(lower(s[i+1]))] != 0 || isScheme(s, i) && o.boundary(i) || c == '-' && s[i+1] == '-') {
				break
			}
			if kind, from, end := tokenAt(s, i); end > 0 {
				o.put(from, end, "[redacted:"+kind+"]")
				i = end
				continue
			}
		}
		i++
	}
	return o.result()
}

// markerEnd returns the index after a marker this package writes that
// starts at i, or 0.
func markerEnd(s string, i int) int {
	for _, p := range markerPrefixes {
		if strings.HasPrefix(s[i:], p) {
			j := i + len(p)
			for j < len(s) && j-i < 48 && (isWord(s[j]) || s[j] == '-') {
				j++
			}
			if j < len(s) && s[j] == ']' {
				return j + 1
			}
			return 0
		}
	}
	return 0
}

func isWord(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func isHexColon(c byte) bool { return isHex(c) || c == ':' || c == '.' }

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// ---- e-mail addresses

func isLocal(c byte) bool {
	return isWord(c) || c == '.' || c == '%' || c == '+' || c == '-'
}

func isDomain(c byte) bool {
	return isLetter(c) || isDigit(c) || c == '.' || c == '-'
}

// email finds an address around the separator at s[at:at+sep] ("@" or
// "%40"): a local part of at least one character (not before minStart)
// and a domain with a dot followed by two letters somewhere.
func email(s string, at, sep, minStart int) (int, int, bool) {
	// Bounded (a local part has at most 64 characters, a domain 255), so
	// that a line of many separators costs linear time.
	a := at
	for a > minStart && at-a < 64 && isLocal(s[a-1]) {
		a--
	}
	if a == at {
		return 0, 0, false
	}
	b := at + sep
	for b < len(s) && b-at < 256 && isDomain(s[b]) {
		b++
	}
	dom := s[at+sep : b]
	ok := len(dom) >= 255 // cut at the longest domain: suspicious enough
	for k := 0; k+2 < len(dom); k++ {
		if dom[k] == '.' && isLetter(dom[k+1]) && isLetter(dom[k+2]) {
			ok = true
			break
		}
	}
	return a, b, ok
}

// userinfoPassword finds the password of scheme://user:password@ before
// the '@' at at.
func userinfoPassword(s string, at, minStart int) (int, bool) {
	stop := func(c byte) bool {
		return c == '/' || c == ':' || c == '@' || c == ' ' || c == '"' || c == '\'' || c == '\t'
	}
	p := at
	for p > minStart && !stop(s[p-1]) {
		p--
	}
	if p == at || p <= minStart || s[p-1] != ':' {
		return 0, false
	}
	q := p - 1
	for q > minStart && !stop(s[q-1]) {
		q--
	}
	return p, q-3 >= minStart && s[q-3:q] == "://"
}

func emailValue(s string) string {
	return strings.ToLower(strings.Replace(s, "%40", "@", 1))
}

// ---- IP addresses

// ipv4At matches \d{1,3}(\.\d{1,3}){3} at i, followed by a non-word byte
// or the end (the caller checked the boundary before i).
func ipv4At(s string, i int) (int, bool) {
	j := i
	for g := 0; g < 4; g++ {
		k := j
		for k < len(s) && isDigit(s[k]) {
			k++
		}
		if k == j || k-j > 3 {
			return 0, false
		}
		j = k
		if g < 3 {
			if j >= len(s) || s[j] != '.' {
				return 0, false
			}
			j++
		}
	}
	if j < len(s) && isWord(s[j]) {
		return 0, false
	}
	return j, true
}

// ipv6Run finds an IPv6 address in the run s[a:b] of hex digits, colons
// and dots, starting at a word boundary, and returns the span to hash:
// from the address to the end of the run, less a trailing dot or colon
// when what is left is the address itself.
func ipv6Run(s string, a, b int, bounded bool) (int, int, bool) {
	colons, double := 0, false
	for k := a; k < b; k++ {
		if s[k] == ':' {
			colons++
			if k+1 < b && s[k+1] == ':' {
				double = true
			}
		}
	}
	if colons < 2 || (!double && colons < 7) {
		return 0, 0, false
	}
	if b-a > 64 {
		return a, b, true // too long to take apart: suspicious enough
	}
	// Any candidate s[x:y] with x at the start of the run (at a word
	// boundary) or just after a colon, y at the end (at a word boundary:
	// "DB::Exception" holds no address) or at a colon or dot.
	endBounded := b == len(s) || !isWord(s[b])
	for x := a; x < b; x++ {
		if x == a {
			if !bounded {
				continue
			}
		} else if s[x-1] != ':' {
			continue
		}
		for y := b; y > x+1; y-- {
			if y < b && s[y] != ':' && s[y] != '.' || y == b && !endBounded {
				continue
			}
			if isIPv6(s[x:y]) {
				e := b
				for e > y && (s[e-1] == '.' || s[e-1] == ':' && s[e-2] != ':') {
					e--
				}
				if e == y {
					return x, y, true
				}
				return x, b, true
			}
		}
	}
	return 0, 0, false
}

// isIPv6 reports whether s is an IPv6 address (no zone) other than the
// unspecified address ("::", "::0", "0:0::0.0.0.0": no one's address).
func isIPv6(s string) bool {
	if len(s) < 3 || strings.Trim(s, "0:.") == "" {
		return false
	}
	groups, double := 0, false
	i := 0
	if s[0] == ':' {
		if s[1] != ':' {
			return false
		}
		double, i = true, 2
	}
	for i < len(s) {
		j := i
		for j < len(s) && isHex(s[j]) && j-i <= 4 {
			j++
		}
		if j < len(s) && s[j] == '.' {
			if end, ok := ipv4At(s, i); !ok || end != len(s) {
				return false
			}
			groups += 2
			break
		}
		if j == i || j-i > 4 {
			return false
		}
		groups++
		i = j
		if i == len(s) {
			break
		}
		if s[i] != ':' {
			return false
		}
		i++
		if i < len(s) && s[i] == ':' {
			if double {
				return false
			}
			double = true
			i++
		} else if i == len(s) {
			return false
		}
	}
	if double {
		return groups >= 1 && groups < 8
	}
	return groups == 8
}

// ---- tokens of known shapes

type prefixRule struct {
	prefix string
	kind   string
	min    int // characters after the prefix
	chars  func(byte) bool
}

func isB64URL(c byte) bool { return isWord(c) || c == '-' }

func isUpperDigit(c byte) bool { return isLetter(c) || isDigit(c) } // any case, see rulesByFirst

func isJWT(c byte) bool { return isB64URL(c) || c == '.' || c == '=' }

func isAlnum(c byte) bool { return isLetter(c) || isDigit(c) }

var prefixRules = []prefixRule{
	{"eyJ", "jwt", 10, isJWT},
	{"AKIA", "aws_key", 16, isUpperDigit}, {"ASIA", "aws_key", 16, isUpperDigit},
	{"AGPA", "aws_key", 16, isUpperDigit}, {"AIDA", "aws_key", 16, isUpperDigit},
	{"AROA", "aws_key", 16, isUpperDigit}, {"AIPA", "aws_key", 16, isUpperDigit},
	{"ANPA", "aws_key", 16, isUpperDigit}, {"ANVA", "aws_key", 16, isUpperDigit},
	{"ABIA", "aws_key", 16, isUpperDigit}, {"ACCA", "aws_key", 16, isUpperDigit},
	{"ghp_", "github_token", 30, isAlnum}, {"gho_", "github_token", 30, isAlnum},
	{"ghu_", "github_token", 30, isAlnum}, {"ghs_", "github_token", 30, isAlnum},
	{"ghr_", "github_token", 30, isAlnum}, {"github_pat_", "github_token", 22, isWord},
	{"xoxb-", "slack_token", 10, isB64URL}, {"xoxp-", "slack_token", 10, isB64URL},
	{"xoxa-", "slack_token", 10, isB64URL}, {"xoxr-", "slack_token", 10, isB64URL},
	{"xoxs-", "slack_token", 10, isB64URL}, {"xoxe-", "slack_token", 10, isB64URL},
	{"xapp-", "slack_token", 10, isB64URL},
	{"AIza", "google_key", 30, isB64URL},
	{"sk_live_", "stripe_key", 16, isAlnum}, {"rk_live_", "stripe_key", 16, isAlnum},
	{"sk_test_", "stripe_key", 16, isAlnum},
	{"glpat-", "gitlab_token", 20, isB64URL},
	{"npm_", "npm_token", 30, isAlnum},
	{"hooks.slack.com/", "slack_webhook", 10, func(c byte) bool { return isB64URL(c) || c == '/' }},
}

// Prefixes are matched in any case: a parser may have changed the case
// of a field (hosts, schemes, countries), and a token in another case is
// still its clear value to anyone who reads it.

// pairs maps the first two bytes (lower case) of the prefix rules to
// 1 + their index in pairRules, the rules that start with them.
var pairs, pairRules = func() (t [1 << 16]uint8, lists [][]prefixRule) {
	for _, p := range prefixRules {
		k := uint16(lower(p.prefix[0]))<<8 | uint16(lower(p.prefix[1]))
		if t[k] == 0 {
			lists = append(lists, nil)
			t[k] = uint8(len(lists))
		}
		lists[t[k]-1] = append(lists[t[k]-1], p)
	}
	return t, lists
}()

// isScheme reports Bea, Bas or Tok at i: Bearer, Basic or Token may start.
func isScheme(s string, i int) bool {
	switch s[i] | 0x20 {
	case 'b':
		return s[i+1]|0x20 == 'e' && s[i+2]|0x20 == 'a' || s[i+1]|0x20 == 'a' && s[i+2]|0x20 == 's'
	case 't':
		return s[i+1]|0x20 == 'o' && s[i+2]|0x20 == 'k'
	}
	return false
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func upper(c byte) byte {
	if c >= 'a' && c <= 'z' {
		return c - ('a' - 'A')
	}
	return c
}

// tokenAt returns the kind and span of a token of a known shape at i:
// prefixed keys, JWTs, bearer and basic credentials (the scheme is kept),
// PEM private keys.
func tokenAt(s string, i int) (string, int, int) {
	c := s[i]
	if i+1 < len(s) {
		if k := pairs[uint16(lower(c))<<8|uint16(lower(s[i+1]))]; k != 0 {
			for _, p := range pairRules[k-1] {
				if len(s)-i < len(p.prefix) || lower(p.prefix[2]) != lower(s[i+2]) || !strings.EqualFold(s[i:i+len(p.prefix)], p.prefix) {
					continue
				}
				j := i + len(p.prefix)
				for j < len(s) && p.chars(s[j]) {
					j++
				}
				if j-i-len(p.prefix) >= p.min {
					return p.kind, i, j
				}
			}
		}
	}
	switch c {
	case 'B', 'b', 'T', 't':
		if i > 0 && isWord(s[i-1]) {
			return "", 0, 0
		}
		for _, scheme := range [...]string{"bearer", "basic", "token"} {
			if len(s)-i <= len(scheme) || !strings.EqualFold(s[i:i+len(scheme)], scheme) || s[i+len(scheme)] != ' ' {
				continue
			}
			v := i + len(scheme)
			for v < len(s) && s[v] == ' ' {
				v++
			}
			j := v
			for j < len(s) && (isB64URL(s[j]) || s[j] == '.' || s[j] == '=' || s[j] == '+' || s[j] == '/' || s[j] == '~') {
				j++
			}
			if j-v >= 8 && !strings.HasPrefix(s[v:], "[") {
				return "token", v, j
			}
		}
	case '-':
		if strings.HasPrefix(s[i:], "-----BEGIN ") {
			line := s[i:]
			if k := strings.IndexByte(line, '\n'); k >= 0 {
				line = line[:k]
			}
			if strings.Contains(line, "PRIVATE KEY") {
				end := strings.Index(s[i:], "-----END ")
				if end < 0 {
					return "private_key", i, len(s)
				}
				j := i + end + len("-----END ")
				if k := strings.Index(s[j:], "-----"); k >= 0 {
					return "private_key", i, j + k + 5
				}
				return "private_key", i, len(s)
			}
		}
	}
	return "", 0, 0
}

// infraAddr reports a loopback, private or link-local address: in log
// lines these are logpipe's own brokers and servers, kept for operators.
func infraAddr(s string) bool {
	a, err := netip.ParseAddr(s)
	return err == nil && (a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsUnspecified())
}
