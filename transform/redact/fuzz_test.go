package redact

import (
	"net/netip"
	"regexp"
	"strings"
	"testing"
)

// The oracle: shapes that must not survive, found by regular expressions
// and net/netip, independently of the scanner.
var (
	oracleIPv4   = regexp.MustCompile(`\b(?:\d{1,3}\.){3}\d{1,3}\b`)
	oracleEmail  = regexp.MustCompile(`[A-Za-z0-9._%+-](?:@|%40)[A-Za-z0-9.-]*\.[A-Za-z]{2}`)
	oracleJWT    = regexp.MustCompile(`(?i)eyj[A-Za-z0-9_-]{10}`)
	oracleAPIKey = regexp.MustCompile(`(?i)(?:(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ABIA|ACCA)[A-Z0-9]{16}|gh[pousr]_[A-Za-z0-9]{30}|github_pat_\w{22}|xox[abprse]-[A-Za-z0-9-]{10}|xapp-[A-Za-z0-9-]{10}|AIza[\w-]{30}|(?:sk_live|rk_live|sk_test)_[A-Za-z0-9]{16}|glpat-[\w-]{20}|npm_[A-Za-z0-9]{30})`)
	oracleRun    = regexp.MustCompile(`[0-9A-Fa-f:.]+`)
)

func oracleIPv6(s string) string {
	for _, m := range oracleRun.FindAllStringIndex(s, -1) {
		a, b := m[0], m[1]
		if strings.Count(s[a:b], ":") < 2 {
			continue
		}
		for x := a; x < b; x++ {
			if x == a && a > 0 && isWord(s[a-1]) || x > a && s[x-1] != ':' {
				continue
			}
			for y := b; y > x+1; y-- {
				if y < b && s[y] != ':' && s[y] != '.' {
					continue
				}
				c := s[x:y]
				if ip, err := netip.ParseAddr(c); err == nil && ip.Is6() && c != "::" {
					return c
				}
			}
		}
	}
	return ""
}

func survivor(s string) string {
	if m := oracleIPv4.FindString(s); m != "" {
		return "IPv4 " + m
	}
	if m := oracleIPv6(s); m != "" {
		return "IPv6 " + m
	}
	for _, re := range []*regexp.Regexp{oracleEmail, oracleJWT, oracleAPIKey} {
		if m := re.FindString(s); m != "" {
			return m
		}
	}
	return ""
}

// FuzzRedact: no IPv4, IPv6, e-mail, JWT or API-key shape survives, in
// text or in a key/value pair; redaction is idempotent.
func FuzzRedact(f *testing.F) {
	for _, s := range []string{
		"from 192.0.2.1 and 2001:db8::1 and [::ffff:10.0.0.1]:443 fe80::1%eth0",
		"/u?email=Taro.Yamada@Example.com&mail=a%40b.co&token=abc&session=x",
		"Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig Cookie: session=a; b=c",
		"key AKIAIOSFODNN7EXAMPLE gh ghp_abcdefghijklmnopqrstuvwxyz0123456789 xoxb-123456789012-abcdefghij",
		`{"password":"x","msg":"\"token\":\"eyJabcdefghijkl\"","ip":"1:2:3:4:5:6:7:8:9"}`,
		"-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----",
	} {
		f.Add(s)
	}
	r, err := New(Config{Key: []byte("fuzz-key-0123456789abcdef")})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := r.String(s)
		if l := survivor(got); l != "" {
			t.Fatalf("%s survives in %q -> %q", l, s, got)
		}
		if again := r.String(got); again != got {
			t.Fatalf("not idempotent: %q -> %q -> %q", s, got, again)
		}
		k, v := r.Pair("label", s)
		if l := survivor(k + " " + v); l != "" {
			t.Fatalf("Pair: %s survives in %q", l, v)
		}
	})
}
