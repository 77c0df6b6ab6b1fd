package redact

import (
	"strings"
	"unsafe"
)

// What a key's value gets.
type action uint8

const (
	keep      action = iota
	remove           // always: [redacted:KIND]
	weak             // only a long hex/base64-looking value
	session          // hashed: [session:HEX]
	cookies          // a cookie list: session cookies hashed, others removed
	authz            // an Authorization value (scheme included): hashed
	maxKeyLen = 64
)

// Words that make any key that contains them secret, and words that make
// a key's long token-like value secret.
var (
	strongWords = []string{"token", "secret", "password", "passwd", "credential", "apikey", "api_key", "api-key", "private_key", "privatekey", "access_key", "accesskey", "signature"}
	weakWords   = []string{"key", "sig", "auth", "code", "pass", "pwd", "cred", "nonce", "hash", "hmac"}
)

// classify says what to do with the value of key (lower case): exact
// names first, then the words the key contains (in one pass).
func (r *Redactor) classify(key string) (action, string) {
	if len(key) <= r.maxExact {
		if r.session[key] {
			return session, "session"
		}
		if r.secret[key] {
			return remove, kindOf(key)
		}
	}
	if len(key) < 3 {
		return keep, ""
	}
	best := -1
	for j := 0; j < len(key); j++ {
		for _, w := range wordsByFirst[key[j]] {
			if (best < 0 || w.rank < best) && strings.HasPrefix(key[j:], keyWords[w.rank].word) {
				best = w.rank
			}
		}
	}
	if best < 0 {
		return keep, ""
	}
	w := keyWords[best]
	return w.act, w.kind
}

type keyWord struct {
	word string
	act  action
	kind string
	rank int // lower wins
}

// keyWords are the words that make a key secret, strongest first.
var keyWords, wordsByFirst = func() (all []keyWord, t [256][]keyWord) {
	add := func(act action, words ...string) {
		for _, w := range words {
			kind := kindOf(w)
			switch act {
			case cookies:
				kind = "cookie"
			case authz, session:
				kind = "session"
			}
			k := keyWord{w, act, kind, len(all)}
			all = append(all, k)
			t[w[0]] = append(t[w[0]], k)
		}
	}
	add(cookies, "cookie")
	add(authz, "authorization")
	add(session, "session")
	add(remove, strongWords...)
	add(weak, weakWords...)
	return all, t
}()

// kindOf names the marker of a removed value by its key.
func kindOf(key string) string {
	switch {
	case strings.Contains(key, "token"), key == "auth":
		return "token"
	case strings.Contains(key, "pass"), key == "pwd":
		return "password"
	case strings.Contains(key, "sig"):
		return "signature"
	case strings.Contains(key, "key"):
		return "key"
	case key == "code":
		return "code"
	}
	return "secret"
}

func isKey(c byte) bool { return isWord(c) || c == '-' || c == '.' }

// keyValue handles a separator ("=", ":" or "%3D") at s[i:i+sep]: when the
// key before it is secret, its value is replaced and keyValue returns the
// index after the value.
func (r *Redactor) keyValue(o *out, s string, i, sep int) (int, bool) {
	// The key: word characters before the separator, possibly quoted
	// ("key": or 'key'=) and followed by spaces.
	ke := i
	if s[i] == ':' {
		for ke > 0 && s[ke-1] == ' ' {
			ke--
		}
	}
	quoted := byte(0)
	if ke > 0 && (s[ke-1] == '"' || s[ke-1] == '\'') {
		quoted = s[ke-1]
		ke--
		if ke > 0 && s[ke-1] == '\\' {
			ke-- // \"key\": inside a JSON string
		}
	}
	ks := ke
	for ks > o.last && ke-ks < maxKeyLen && isKey(s[ks-1]) {
		ks--
	}
	if ks == ke {
		return 0, false
	}
	if quoted != 0 && (ks == 0 || s[ks-1] != quoted) {
		return 0, false
	}
	var buf [maxKeyLen]byte
	key := buf[:0]
	for k := ks; k < ke; k++ {
		c := s[k]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		key = append(key, c)
	}
	// The key lives on the stack; classify keeps no reference to it.
	act, kind := r.classify(unsafe.String(&buf[0], len(key)))
	if act == keep {
		return 0, false
	}
	// The value: after the separator and spaces; quoted (also \"...\"
	// inside JSON strings) up to the closing quote, else up to a byte
	// that ends a value in URLs, headers, logfmt and JSON.
	v := i + sep
	for v < len(s) && s[v] == ' ' {
		v++
	}
	if v >= len(s) {
		return 0, false
	}
	if j := markerEnd(s, v); j > 0 {
		return j, true // redacted already
	}
	// A weak key's value is only redacted when it looks generated, and is
	// scanned again otherwise: look at most maxWeak bytes ahead, so that a
	// line of many weak keys costs linear time.
	const maxWeak = 512
	full := s
	if act == weak && len(s) > v+maxWeak {
		s = s[:v+maxWeak]
	}
	var end int
	vs := v
	switch {
	case s[v] == '"' || s[v] == '\'':
		q := s[v]
		vs = v + 1
		end = vs
		for end < len(s) && s[end] != q {
			if s[end] == '\\' {
				end++
			}
			end++
		}
		end = min(end, len(s))
	case s[v] == '\\' && v+1 < len(s) && s[v+1] == '"':
		vs = v + 2
		end = strings.Index(s[vs:], `\"`)
		if end < 0 {
			end = len(s)
		} else {
			end += vs
		}
	case act == cookies:
		end = cookieListEnd(s, v)
	default:
		end = valueEnd(s, v)
		if act == authz && end < len(s) && s[end] == ' ' && allLetters(s[v:end]) {
			end = valueEnd(s, end+1)
		}
	}
	if act == weak && len(s) < len(full) && end >= len(s) {
		return 0, false // longer than any generated secret
	}
	s = full
	val := s[vs:end]
	if val == "" || val == "-" || val == "null" || markerEnd(s, vs) == end {
		return end, true
	}
	switch act {
	case remove:
		if len(val) <= 3 && allDigits(val) {
			return end, true // a status or exit code, not a secret
		}
		o.put(vs, end, "[redacted:"+kind+"]")
	case weak:
		if !tokenLike(val) {
			return 0, false
		}
		o.put(vs, end, "[redacted:"+kind+"]")
	case session, authz:
		o.putHash(r, vs, end, "session", val)
	case cookies:
		r.cookieList(o, s, vs, end)
	}
	return end, true
}

// valueEnd returns the end of an unquoted value that starts at v.
func valueEnd(s string, v int) int {
	for j := v; j < len(s); j++ {
		switch s[j] {
		case ' ', '\t', '\n', '\r', '&', '"', '\'', ',', ';', '#', '<', '>', '\\', ')', ']', '}', '|', 0:
			return j
		case '%':
			if j+2 < len(s) && s[j+1] == '2' && s[j+2] == '6' { // %26 is an encoded &
				return j
			}
		}
	}
	return len(s)
}

// cookieListEnd returns the end of an unquoted cookie list at v:
// name=value pairs separated by "; ".
func cookieListEnd(s string, v int) int {
	j := v
	for {
		e := valueEnd(s, j)
		if eq := strings.IndexByte(s[j:e], '='); eq >= 0 {
			if m := markerEnd(s, j+eq+1); m > 0 {
				e = m // a value redacted already
			}
		}
		if e < len(s) && s[e] == ';' {
			k := e + 1
			for k < len(s) && s[k] == ' ' {
				k++
			}
			if k < len(s) && isKey(s[k]) {
				j = k
				continue
			}
		}
		return e
	}
}

// cookieAttrs are Set-Cookie attributes, kept as they are.
var cookieAttrs = map[string]bool{"path": true, "domain": true, "expires": true, "max-age": true, "samesite": true, "secure": true, "httponly": true, "priority": true, "partitioned": true}

// cookieList redacts the cookie pairs in s[a:b]: session cookies hashed,
// attributes kept, other values removed.
func (r *Redactor) cookieList(o *out, s string, a, b int) {
	for a < b {
		pe := strings.IndexByte(s[a:b], ';')
		if pe < 0 {
			pe = b
		} else {
			pe += a
		}
		pair := s[a:pe]
		lead := len(pair) - len(strings.TrimLeft(pair, " "))
		name, _, ok := strings.Cut(pair[lead:], "=")
		if ok {
			vs := a + lead + len(name) + 1
			val := s[vs:pe]
			ln := strings.ToLower(strings.TrimSpace(name))
			switch {
			case val == "" || markerEnd(val, 0) == len(val):
			case cookieAttrs[ln]:
				if red, ok := r.scan(val, Text); ok {
					o.put(vs, pe, string(red))
				}
			case r.session[ln] || strings.Contains(ln, "session"):
				o.putHash(r, vs, pe, "session", val)
			default:
				o.put(vs, pe, "[redacted:cookie]")
			}
		}
		a = pe + 1
	}
}

func allLetters(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isLetter(s[i]) {
			return false
		}
	}
	return s != ""
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return s != ""
}

// tokenLike reports a value that looks like a generated secret: at least
// 16 characters of base64/hex, with letters and digits.
func tokenLike(s string) bool {
	if len(s) < 16 {
		return false
	}
	var letters, digits int
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isDigit(c):
			digits++
		case isLetter(c):
			letters++
		case c == '-' || c == '_' || c == '=' || c == '+' || c == '/' || c == '.' || c == '~':
		default:
			return false
		}
	}
	return letters > 0 && digits > 0
}

// Pair redacts a key and its value stored apart (job labels): the value
// is treated as the key's value would be in key=value text, then scanned.
func (r *Redactor) Pair(key, value string) (string, string) {
	k := len(key)
	for k > 0 && isKey(key[k-1]) {
		k--
	}
	act, kind := keep, ""
	if last := key[k:]; last != "" {
		act, kind = r.classify(strings.ToLower(last))
	}
	switch {
	case value == "" || value == "-" || markerEnd(value, 0) == len(value):
	case act == remove && !(len(value) <= 3 && allDigits(value)), act == weak && tokenLike(value):
		value = "[redacted:" + kind + "]"
	case act == session, act == authz:
		value = string(appendMarker(nil, "session", r.Hash(value)))
	case act == cookies:
		o := out{s: value}
		r.cookieList(&o, value, 0, len(value))
		if b, ok := o.result(); ok {
			value = string(b)
		}
		value = r.String(value)
	default:
		value = r.String(value)
	}
	return r.String(key), value
}
