package redact

import (
	"net/netip"
	"regexp"
	"strings"
)

// Residue reports a secret shape left in s that the pass must have
// removed — an IPv4 or IPv6 address, an e-mail address, a JWT or an API
// key — or "". It is the tests' and fuzzers' judge, written independently
// of the scanner (regular expressions and net/netip). In a User-Agent
// (userAgent true) a Product/1.2.3.4 version is not an address.
func Residue(s string, userAgent bool) string {
	for _, m := range residueIPv4.FindAllStringIndex(s, -1) {
		if !(userAgent && m[0] > 0 && s[m[0]-1] == '/') {
			return "IPv4 " + s[m[0]:m[1]]
		}
	}
	if ip := residueIPv6(s); ip != "" {
		return "IPv6 " + ip
	}
	for _, re := range []struct {
		name string
		re   *regexp.Regexp
	}{{"e-mail", residueEmail}, {"JWT", residueJWT}, {"API key", residueAPIKey}} {
		if m := re.re.FindString(s); m != "" {
			return re.name + " " + m
		}
	}
	return ""
}

var (
	residueIPv4   = regexp.MustCompile(`\b(?:\d{1,3}\.){3}\d{1,3}\b`)
	residueEmail  = regexp.MustCompile(`[A-Za-z0-9._%+-](?:@|%40)[A-Za-z0-9.-]*\.[A-Za-z]{2}`)
	residueJWT    = regexp.MustCompile(`(?i)eyj[A-Za-z0-9_-]{10}`)
	residueAPIKey = regexp.MustCompile(`(?i)(?:(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ABIA|ACCA)[A-Z0-9]{16}|gh[pousr]_[A-Za-z0-9]{30}|github_pat_\w{22}|xox[abprse]-[A-Za-z0-9-]{10}|xapp-[A-Za-z0-9-]{10}|AIza[\w-]{30}|(?:sk_live|rk_live|sk_test)_[A-Za-z0-9]{16}|glpat-[\w-]{20}|npm_[A-Za-z0-9]{30})`)
	residueRun    = regexp.MustCompile(`[0-9A-Fa-f:.]+`)
)

// residueIPv6 returns an IPv6 address in s: a part of a run of hex
// digits, colons and dots that starts at the run's start (at a word
// boundary) or after a colon, and ends at its end or before a colon or
// dot (or at its end when a word boundary follows), that net/netip accepts.
func residueIPv6(s string) string {
	word := func(c byte) bool {
		return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
	}
	for _, m := range residueRun.FindAllStringIndex(s, -1) {
		a, b := m[0], m[1]
		if strings.Count(s[a:b], ":") < 2 {
			continue
		}
		for x := a; x < b; x++ {
			if x == a && a > 0 && word(s[a-1]) || x > a && s[x-1] != ':' {
				continue
			}
			for y := b; y > x+1; y-- {
				if y < b && s[y] != ':' && s[y] != '.' || y == b && b < len(s) && word(s[b]) {
					continue
				}
				c := s[x:y]
				if ip, err := netip.ParseAddr(c); err == nil && ip.Is6() && !ip.IsUnspecified() {
					return c
				}
			}
		}
	}
	return ""
}
