package redact

import (
	"fmt"
	"strings"
	"testing"
)

func testRedactor(t testing.TB) *Redactor {
	t.Helper()
	r, err := New(Config{Key: []byte("redact-test-key-0123456789"), SessionParams: []string{"my_sess"}})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRedactString(t *testing.T) {
	r := testRedactor(t)
	h := func(kind, v string) string { return fmt.Sprintf("[%s:%016x]", kind, r.Hash(v)) }
	jwt := "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
	for _, tt := range []struct {
		in, want string
	}{
		// Clean text is kept as it is.
		{"/items/m12345678901?page=2&sort=new", "/items/m12345678901?page=2&sort=new"},
		{"https://www.example.jp/search?q=shoes", "https://www.example.jp/search?q=shoes"},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0.0.0 Safari/537.36", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/" + h("ip", "120.0.0.0") + " Safari/537.36"},
		{"Thu, 01 Jan 1970 00:00:00 GMT", "Thu, 01 Jan 1970 00:00:00 GMT"},
		{"2026-11-20T05:00:00.000Z exit code=3 took 12:34:56", "2026-11-20T05:00:00.000Z exit code=3 took 12:34:56"},
		{"std::vector<int> a::b", "std::vector<int> " + h("ip", "a::b")},
		// Secret query parameters in any URL; sessions hashed.
		{"https://www.example.jp/login?refresh_token=R3FR3SH&next=/", "https://www.example.jp/login?refresh_token=[redacted:token]&next=/"},
		{"/a?token=T0K3N&x=1&session=S1&api_key=K&code=abcdef", "/a?token=[redacted:token]&x=1&session=" + h("session", "S1") + "&api_key=[redacted:key]&code=[redacted:code]"},
		{"/cb?redirect=https%3A%2F%2Fa.example%2F%3Faccess_token%3DABCDEF%26x%3D1", "/cb?redirect=https%3A%2F%2Fa.example%2F%3Faccess_token%3D[redacted:token]%26x%3D1"},
		{"/p;jsessionid=ABC123", "/p;jsessionid=" + h("session", "ABC123")},
		// E-mail addresses, also URL-encoded: hashed (lower case).
		{"/u?email=Taro.Yamada@Example.com&x=1", "/u?email=" + h("email", "taro.yamada@example.com") + "&x=1"},
		{"/u?mail=taro.yamada%40example.com", "/u?mail=" + h("email", "taro.yamada@example.com")},
		// IP addresses: hashed.
		{"from 192.0.2.1 and 2001:db8::1 and [::ffff:10.0.0.1]:443 fe80::1%eth0", "from " + h("ip", "192.0.2.1") + " and " + h("ip", "2001:db8::1") + " and [" + h("ip", "::ffff:10.0.0.1") + "]:443 " + h("ip", "fe80::1") + "%eth0"},
		{"ip:2001:db8:0:0:0:0:0:1.", "ip:" + h("ip", "2001:db8:0:0:0:0:0:1") + "."},
		// a C++ or Ruby scope is no address: "DB::E" is hex and colons, but a word goes on after it
		{"code: 242, message: DB::Exception: Table is in readonly mode", "code: 242, message: DB::Exception: Table is in readonly mode"},
		{"Cache::Add and db::e and db::e1x", "Cache::Add and " + h("ip", "db::e") + " and db::e1x"},
		{"at 1:2:3:4:5:6:7:8:9 x", "at " + h("ip", "1:2:3:4:5:6:7:8:9") + " x"},
		// Tokens of known shapes: removed.
		{"Authorization: Bearer " + jwt + " x", "Authorization: " + h("session", "Bearer "+jwt) + " x"},
		{"sent Bearer abcdefghij12345 ok", "sent Bearer [redacted:token] ok"},
		{"jwt " + jwt, "jwt [redacted:jwt]"},
		{"key AKIAIOSFODNN7EXAMPLE used", "key [redacted:aws_key] used"},
		{"gh ghp_abcdefghijklmnopqrstuvwxyz0123456789", "gh [redacted:github_token]"},
		{"slack xoxb-123456789012-abcdefghij", "slack [redacted:slack_token]"},
		// Key-ish names in JSON, logfmt, headers.
		{`{"password":"hunter2","user":"u","aws_secret_access_key":"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}`, `{"password":"[redacted:password]","user":"u","aws_secret_access_key":"[redacted:secret]"}`},
		{`{"msg":"login \"password\":\"hunter2\" done"}`, `{"msg":"login \"password\":\"[redacted:password]\" done"}`},
		{`level=info db_password="a b c" cache_key=abc`, `level=info db_password="[redacted:password]" cache_key=abc`},
		{`x-api-key: 0123456789abcdef0123`, `x-api-key: [redacted:key]`},
		{`hmac=0123456789abcdef0123456789abcdef`, `hmac=[redacted:secret]`},
		{`keyword=running+shoes`, `keyword=running+shoes`},
		// Cookies: session cookies hashed, the rest removed, attributes kept.
		{`Cookie: lang=ja; session=S3CR3T; my_sess=M; tracking=T`, `Cookie: lang=[redacted:cookie]; session=` + h("session", "S3CR3T") + `; my_sess=` + h("session", "M") + `; tracking=[redacted:cookie]`},
		{`{"request_cookie":"session=abc; x=1","set_cookie":"sid=Z; Path=/; HttpOnly"}`, `{"request_cookie":"session=` + h("session", "abc") + `; x=[redacted:cookie]","set_cookie":"sid=` + h("session", "Z") + `; Path=/; HttpOnly"}`},
		{`token=[eyJhbGciOiJIUzI1NiJ9.x`, `token=[redacted:token]`},
		{`Set-Cookie: a=b; Domain=192.0.2.9; Path=/`, `Set-Cookie: a=[redacted:cookie]; Domain=` + h("ip", "192.0.2.9") + `; Path=/`},
		{"redis://app:s3cr3t-pw@cache-1:6379/0", "redis://app:[redacted:password]@cache-1:6379/0"},
		// Truncated JSON: the value runs to the end.
		{`{"token":"abc`, `{"token":"[redacted:token]`},
		{"-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY----- after", "[redacted:private_key] after"},
	} {
		got := r.String(tt.in)
		if got != tt.want {
			t.Errorf("String(%q)\n got  %q\n want %q", tt.in, got, tt.want)
		}
		if again := r.String(got); again != got {
			t.Errorf("not idempotent: %q -> %q", got, again)
		}
	}
}

func TestUserAgentVersions(t *testing.T) {
	r := testRedactor(t)
	ua := "Mozilla/5.0 (Windows NT 10.0) Chrome/120.0.0.0 Safari/537.36 via 192.0.2.7"
	got := r.StringMode(ua, UserAgent)
	if !strings.Contains(got, "Chrome/120.0.0.0") || strings.Contains(got, "192.0.2.7") {
		t.Errorf("UserAgent mode: %q", got)
	}
}

func TestCleanDoesNotAllocate(t *testing.T) {
	r := testRedactor(t)
	for _, s := range []string{
		"/items/m12345678901?page=2&sort=new",
		"https://www.example.jp/search?q=shoes&keyword=x",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.109 Safari/537.36",
		"Thu, 01 Jan 1970 00:00:00 GMT",
		`{"time":"2026-11-20T05:00:00Z","job":"etl","event":"finished","exit_code":0}`,
	} {
		if n := testing.AllocsPerRun(100, func() { _ = r.String(s) }); n != 0 {
			t.Errorf("String(%q): %.0f allocations, want 0", s, n)
		}
		if got := r.String(s); got != s {
			t.Errorf("clean %q changed to %q", s, got)
		}
	}
}

func TestPatterns(t *testing.T) {
	r, err := New(Config{Key: []byte("redact-test-key-0123456789"), Patterns: []Pattern{
		{Name: "ticket", Regexp: `TCK-[0-9]{6}`},
		{Name: "member", Regexp: `M[0-9]{8}`, Hash: true},
	}})
	if err != nil {
		t.Fatal(err)
	}
	got := r.String("see TCK-123456 of M12345678")
	want := fmt.Sprintf("see [redacted:ticket] of [member:%016x]", r.Hash("M12345678"))
	if got != want {
		t.Errorf("got %q want %q", got, want)
	}
	if _, err := New(Config{Key: []byte("redact-test-key-0123456789"), Patterns: []Pattern{{Name: "x", Regexp: "("}}}); err == nil {
		t.Error("bad regexp accepted")
	}
	if _, err := New(Config{Key: []byte("short")}); err == nil {
		t.Error("short key accepted")
	}
}

func TestCheckPatterns(t *testing.T) {
	ps := []Pattern{
		{Name: "member-id_2", Regexp: `M[0-9]{10}`},
		{Name: "a b", Regexp: `(`},
		{Name: "x", Regexp: ``},
	}
	want := []string{
		`patterns[1].name: "a b" is not a name`,
		`patterns[1].regexp: "(" is not a regular expression: `,
		`patterns[2].regexp: an empty regular expression matches everywhere`,
	}
	errs := CheckPatterns(ps)
	if len(errs) != len(want) {
		t.Fatalf("CheckPatterns = %v, want %d errors", errs, len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(errs[i].Error(), w) {
			t.Errorf("error %d = %q, want it to start %q", i, errs[i], w)
		}
	}
	key := []byte("redact-test-key-0123456789")
	if _, err := New(Config{Key: key, Patterns: ps}); err == nil || !strings.Contains(err.Error(), want[0]) {
		t.Errorf("New = %v, want the first error CheckPatterns reports", err)
	}
	if _, err := New(Config{Key: key, Patterns: ps[:1]}); err != nil {
		t.Errorf("New refused a valid pattern: %v", err)
	}
}
