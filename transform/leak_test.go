package transform

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// The leak corpus: secrets placed in every field of every golden input
// (testdata/FORMAT/*.log), and broken lines of every shape carrying them.
// TestLeakCorpus writes it to testdata/leak/corpus (with -update) and checks that
// parsing and enrichment, or the dead-letter path, keep none of the clear
// values; pipeline.TestNoSecretLeaks sends the same files through Kafka
// into ClickHouse, and cmd/logpipe tests `logpipe check` with them.

// leakSecrets are the clear values that must never be stored, logged or
// sent (testdata/leak/secrets.txt holds the same list).
var leakSecrets = []string{
	"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJsZWFrLXRlc3QifQ.TEFLSy1KV1QtU0lHTkFUVVJFLTAx", // JWT
	"eyJzdWIiOiJsZWFrLXRlc3QifQ",               // its payload alone
	"AKIAQLEAKTEST0000001",                     // AWS access key id
	"ghp_LeakTest0123456789abcdefghijklmnopqr", // GitHub token
	"xoxb-210987654321-LeakTestSlack01",        // Slack token
	"RT-leak-refresh-0001",                     // refresh_token value
	"hunter2-leak-pass",                        // password value
	"SESS-leak-cookie-0001",                    // session cookie value
	"OTHER-leak-cookie-0002",                   // another cookie value
	"opaqueLEAKbearer12345",                    // opaque bearer token
	"SIG-leak-signature-01",                    // sig= value
	"9a8b7c6d5e4f30211203f4e5d6c7b8a9",         // hex API key after x-api-key
	"taro.yamada@example.com",                  // e-mail address
	"taro.yamada%40example.com",                // the same, URL-encoded
	"203.0.113.77",                             // IPv4
	"2001:db8:85a3::8a2e:370:7334",             // IPv6
	"2001:db8:85a3:0:0:8a2e:370:7334",          // IPv6, uncompressed
}

// Payloads carry the secrets with the context that makes them secret:
// free text (any characters but line ends), a URL and a list without
// spaces (for space- and tab-separated formats).
var (
	leakText = "Authorization: Bearer opaqueLEAKbearer12345 Cookie: session=SESS-leak-cookie-0001; pref=OTHER-leak-cookie-0002 " +
		"GET https://www.example.jp/login?refresh_token=RT-leak-refresh-0001&next=/ password=hunter2-leak-pass " +
		"from 203.0.113.77 via 2001:db8:85a3::8a2e:370:7334 (2001:db8:85a3:0:0:8a2e:370:7334) mail Taro.Yamada@Example.com " +
		"jwt=eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJsZWFrLXRlc3QifQ.TEFLSy1KV1QtU0lHTkFUVVJFLTAx key AKIAQLEAKTEST0000001 " +
		"gh ghp_LeakTest0123456789abcdefghijklmnopqr slack xoxb-210987654321-LeakTestSlack01 x-api-key: 9a8b7c6d5e4f30211203f4e5d6c7b8a9 " +
		"payload eyJzdWIiOiJsZWFrLXRlc3QifQ"
	leakURL = "/leak/taro.yamada@example.com?refresh_token=RT-leak-refresh-0001&access_token=eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJsZWFrLXRlc3QifQ.TEFLSy1KV1QtU0lHTkFUVVJFLTAx" +
		"&api_key=AKIAQLEAKTEST0000001&email=taro.yamada%40example.com&sig=SIG-leak-signature-01&password=hunter2-leak-pass&session=SESS-leak-cookie-0001&ip=203.0.113.77&x=1"
	leakList = "203.0.113.77,2001:db8:85a3::8a2e:370:7334,taro.yamada@example.com,AKIAQLEAKTEST0000001,ghp_LeakTest0123456789abcdefghijklmnopqr," +
		"xoxb-210987654321-LeakTestSlack01,eyJzdWIiOiJsZWFrLXRlc3QifQ,cookie=session=SESS-leak-cookie-0001;pref=OTHER-leak-cookie-0002,x-api-key=9a8b7c6d5e4f30211203f4e5d6c7b8a9"
)

// leakedIn returns the clear secrets s contains, in any case, whole or
// their first 10 characters (a value cut short in an error message).
func leakedIn(s string) []string {
	var out []string
	ls := strings.ToLower(s)
	for _, v := range leakSecrets {
		if strings.Contains(ls, strings.ToLower(v[:min(len(v), 10)])) {
			out = append(out, v)
		}
	}
	return out
}

// leakLines builds the corpus of one golden input: each field of each of
// its first lines replaced by each payload, then broken lines.
func leakLines(format string, golden []byte) []string {
	var lines []string
	var dirty []string
	n := 0
	EachLine(golden, func(_ int, line []byte) {
		if n >= 3 || line[0] == '#' {
			return
		}
		n++
		var vs []string
		if line[0] == '{' {
			vs = jsonVariants(line)
		} else {
			sep := " "
			if strings.HasPrefix(format, "cloudfront") {
				sep = "\t"
			}
			vs = textVariants(string(line), sep)
		}
		lines = append(lines, vs...)
		if len(vs) > 0 {
			dirty = append(dirty, vs[len(vs)/2])
		}
	})
	// Broken lines of every shape, with the secrets in them.
	for _, d := range dirty {
		if len(d) > 40 {
			lines = append(lines, d[:len(d)-7]) // truncated
		}
	}
	lines = append(lines,
		"ERROR not a log line: "+leakText,                                        // plain text
		"\x00\x01\xfe binary "+leakList+" \xff\xfe "+leakURL,                     // binary
		`{"time":"2026-11-20T05:00:00Z","status":{"nested":"`+leakText+`"`,       // truncated JSON
		`{"timestamp":12,"response_status":"`+leakURL+`","note":"`+leakText+`"}`, // wrong types
		`{"job":["`+leakList+`"],"event":{"x":"`+leakText+`"}}`,                  // wrong types
	)
	return lines
}

// jsonVariants replaces each leaf of a JSON object, one at a time, by
// each payload (a string where a number was makes a wrong-typed field).
func jsonVariants(line []byte) []string {
	var doc any
	d := json.NewDecoder(bytes.NewReader(line))
	d.UseNumber()
	if d.Decode(&doc) != nil {
		return nil
	}
	var paths [][]string
	var walk func(v any, path []string)
	walk = func(v any, path []string) {
		if m, ok := v.(map[string]any); ok {
			keys := make([]string, 0, len(m))
			for k := range m {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				walk(m[k], append(append([]string(nil), path...), k))
			}
			return
		}
		paths = append(paths, path)
	}
	walk(doc, nil)
	var out []string
	for _, p := range paths {
		for _, payload := range []string{leakText, leakURL} {
			var c any
			d := json.NewDecoder(bytes.NewReader(line))
			d.UseNumber()
			d.Decode(&c)
			m := c.(map[string]any)
			for _, k := range p[:len(p)-1] {
				m = m[k].(map[string]any)
			}
			m[p[len(p)-1]] = payload
			var b bytes.Buffer
			e := json.NewEncoder(&b)
			e.SetEscapeHTML(false)
			e.Encode(c)
			out = append(out, strings.TrimSuffix(b.String(), "\n"))
		}
	}
	return out
}

// textVariants replaces each separated field of a text line, one at a
// time, by the payloads without spaces: quotes and a key= prefix are kept.
func textVariants(line, sep string) []string {
	fields := strings.Split(line, sep)
	var out []string
	for i, f := range fields {
		for _, payload := range []string{leakURL, leakList} {
			v := payload
			if k, _, ok := strings.Cut(f, "="); ok && !strings.ContainsAny(k, `"/`) {
				v = k + "=" + payload
			}
			if strings.HasPrefix(f, `"`) {
				v = `"` + v
			}
			if strings.HasSuffix(f, `"`) && len(f) > 1 {
				v += `"`
			}
			c := append([]string(nil), fields...)
			c[i] = v
			out = append(out, strings.Join(c, sep))
		}
	}
	return out
}

// leakInputs lists the golden inputs: testdata/FORMAT/STEM.log.
func leakInputs(t testing.TB) []string {
	logs, err := filepath.Glob("testdata/*/*.log")
	if err != nil || len(logs) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	return logs
}

// TestLeakCorpus writes (with -update) or checks testdata/leak, then runs
// every corpus line through the parser, the Enricher and the dead-letter
// path: no clear secret may remain in a record or a dead letter.
func TestLeakCorpus(t *testing.T) {
	enr, err := NewEnricher(EnrichConfig{HashKey: []byte("leak-test-key-0123456789"), SessionCookies: []string{"session"}, DropQueryParams: []string{"token"}})
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		os.MkdirAll("testdata/leak/corpus", 0o755)
		os.WriteFile("testdata/leak/secrets.txt", []byte(strings.Join(leakSecrets, "\n")+"\n"), 0o644)
	}
	formats := map[string]bool{}
	for _, in := range leakInputs(t) {
		format := filepath.Base(filepath.Dir(in))
		formats[format] = true
		stem := strings.TrimSuffix(filepath.Base(in), ".log")
		golden, err := os.ReadFile(in)
		if err != nil {
			t.Fatal(err)
		}
		corpus := strings.Join(leakLines(format, golden), "\n") + "\n"
		file := filepath.Join("testdata/leak/corpus", format+"__"+stem+".log")
		opts := strings.TrimSuffix(in, ".log") + ".options.json"
		if *update {
			if err := os.WriteFile(file, []byte(corpus), 0o644); err != nil {
				t.Fatal(err)
			}
			if b, err := os.ReadFile(opts); err == nil {
				os.WriteFile(strings.TrimSuffix(file, ".log")+".options.json", b, 0o644)
			}
		}
		if b, err := os.ReadFile(file); err != nil || string(b) != corpus {
			t.Fatalf("%s is not what the generator makes (go test ./transform -run TestLeakCorpus -update): %v", file, err)
		}
		p := parserFor(t, in)
		var rows, dead int
		EachLine([]byte(corpus), func(n int, line []byte) {
			rec, err := parseLine(p, line)
			var got string
			switch {
			case errors.Is(err, ErrSkip):
				return
			case err != nil:
				dead++
				got = string(enr.DeadLetter(line, 64<<10)) + "\n" + enr.RedactReason(err.Error(), line)
			default:
				rows++
				switch r := rec.(type) {
				case CDNRequest:
					enr.CDN(&r)
					rec = r
				case JobEvent:
					enr.Job(&r)
					rec = r
				}
				b, _ := json.Marshal(rec)
				got = string(b)
			}
			if l := leakedIn(got); len(l) > 0 {
				t.Errorf("%s:%d: %q in clear:\n%s", file, n, l, got)
			}
		})
		if rows == 0 || dead == 0 {
			t.Errorf("%s: %d rows, %d dead letters: the corpus must exercise both", file, rows, dead)
		}
		t.Logf("%s: %d rows, %d dead letters", file, rows, dead)
	}
	for _, f := range Formats() {
		if !formats[f] {
			t.Errorf("format %s has no golden input, so no leak corpus", f)
		}
	}
}

// TestLeakCorpusNoRaw: with NoRawDeadLetters a dead letter is only the
// keyed hash of the line.
func TestLeakCorpusNoRaw(t *testing.T) {
	enr, err := NewEnricher(EnrichConfig{HashKey: []byte("leak-test-key-0123456789"), Redact: RedactRules{NoRawDeadLetters: true}})
	if err != nil {
		t.Fatal(err)
	}
	line := []byte("ERROR " + leakText)
	got := string(enr.DeadLetter(line, 10))
	if want := fmt.Sprintf("[line:%016x]", enr.Hash(string(line))); got != want {
		t.Errorf("DeadLetter = %q, want %q", got, want)
	}
}

// TestDeadLetterCutAfterRedaction: a secret across the 64 KiB cut is
// redacted before the line is cut, not kept in part.
func TestDeadLetterCutAfterRedaction(t *testing.T) {
	enr, err := NewEnricher(EnrichConfig{HashKey: []byte("leak-test-key-0123456789")})
	if err != nil {
		t.Fatal(err)
	}
	const max = 100
	line := strings.Repeat("x ", 45) + "taro.yamada@example.com and more"
	got := string(enr.DeadLetter([]byte(line), max))
	if len(got) > max || strings.Contains(got, "taro") {
		t.Errorf("DeadLetter = %q (%d bytes): the address was cut, not redacted", got, len(got))
	}
}

// TestRedactReason: a value a parser quoted cut short is redacted as the
// whole value it was cut from.
func TestRedactReason(t *testing.T) {
	enr, err := NewEnricher(EnrichConfig{HashKey: []byte("leak-test-key-0123456789")})
	if err != nil {
		t.Fatal(err)
	}
	line := []byte(`192.0.2.1 - - [x] "GET / HTTP/1.1" /u/taro.yamada@example.com?x=1 5 "-" "-"`)
	got := enr.RedactReason(`nginx $status "/u/taro.yamad..." is not an HTTP status`, line)
	if strings.Contains(got, "taro") || !strings.HasPrefix(got, `nginx $status "/u/[email:`) || !strings.HasSuffix(got, `..." is not an HTTP status`) {
		t.Errorf("RedactReason = %q", got)
	}
	clean := `nginx $status "yesterday..." is not an HTTP status`
	if got := enr.RedactReason(clean, []byte("a yesterday-ish line")); got != clean {
		t.Errorf("clean reason changed: %q", got)
	}
}
