package redact

import "testing"

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
		if l := Residue(got, false); l != "" {
			t.Fatalf("%s survives in %q -> %q", l, s, got)
		}
		if again := r.String(got); again != got {
			t.Fatalf("not idempotent: %q -> %q -> %q", s, got, again)
		}
		k, v := r.Pair("label", s)
		if l := Residue(k+" "+v, false); l != "" {
			t.Fatalf("Pair: %s survives in %q", l, v)
		}
	})
}
