package transform

import (
	"reflect"
	"strings"
	"testing"

	json "github.com/goccy/go-json"
)

// slowFastly is the reference: the same mapping with goccy/go-json's
// reflection decoder only.
func slowFastly(line []byte, r *CDNRequest) error {
	var f fastlyJSON
	if err := json.Unmarshal(line, &f); err != nil {
		return err
	}
	fast := fastlyJSON{}
	if fast.decode(line, nil) && !reflect.DeepEqual(normalizeRaw(fast), normalizeRaw(f)) {
		return errMismatch
	}
	return nil
}

var errMismatch = &mismatchError{}

type mismatchError struct{}

func (*mismatchError) Error() string { return "fast and slow decoders disagree" }

// normalizeRaw makes empty and nil RawMessages compare equal.
func normalizeRaw(f fastlyJSON) fastlyJSON {
	v := reflect.ValueOf(&f).Elem()
	for i := 0; i < v.NumField(); i++ {
		if fv, ok := v.Field(i).Interface().(json.RawMessage); ok && len(fv) == 0 {
			v.Field(i).Set(reflect.ValueOf(json.RawMessage(nil)))
		}
	}
	return f
}

// FuzzFastlyDecode checks that the allocation-free decoder, whenever it
// accepts a line, fills exactly what goccy/go-json fills.
func FuzzFastlyDecode(f *testing.F) {
	for _, l := range goldenLines(f, "fastly-json", "") {
		f.Add(l)
	}
	f.Add([]byte(`{"url":"/a","host":null,"response_status":200,"x":{"y":[1,2]}}`))
	f.Add([]byte(`{"url":"/a\u00e9","response_status":2e2}`))
	f.Add([]byte(`{"url":"/a","url":"/b"} `))
	f.Add([]byte("{\"url\":\t\"/a\",\"host\":\"h\x7f\",\"response_status\":200}\n"))
	f.Add([]byte("{\"url\":\"/a\",\"request_user_agent\":\"Mozilla/5.0 (caf\xc3\xa9)\",\"response_status\":200}"))
	f.Fuzz(func(t *testing.T, line []byte) {
		var r CDNRequest
		if err := slowFastly(line, &r); err == errMismatch {
			var fast, slow fastlyJSON
			fast.decode(line, nil)
			json.Unmarshal(line, &slow)
			t.Fatalf("decoders disagree on %q:\nfast %+v\nslow %+v", line, fast, slow)
		}
	})
}

func TestFastlyDecodeAllocs(t *testing.T) {
	lines := goldenLines(t, "fastly-json", "")
	var r CDNRequest
	p := FastlyJSON{}
	allocs := testing.AllocsPerRun(200, func() {
		for _, l := range lines[:1] {
			r.Reset()
			p.Parse(l, &r)
		}
	})
	if allocs != 0 {
		t.Errorf("Parse allocates %.0f times per line on a plain line, want 0", allocs)
	}
}

// TestPlainString checks the 8-bytes-at-a-time string reader against a
// byte-by-byte reference, with each special byte at each offset of the
// words it reads.
func TestPlainString(t *testing.T) {
	ref := func(b []byte, i int) (string, int, bool) {
		if i >= len(b) || b[i] != '"' {
			return "", 0, false
		}
		for j := i + 1; j < len(b); j++ {
			if c := b[j]; c == '"' {
				return string(b[i+1 : j]), j + 1, true
			} else if c < 0x20 || c >= 0x80 || c == '\\' {
				return "", 0, false
			}
		}
		return "", 0, false
	}
	specials := []byte{'"', '\\', 0x00, 0x1f, '\t', '\n', 0x7f, 0x80, 0xc3, 0xff, ' ', '!', '~', 'a'}
	for n := 0; n <= 24; n++ {
		for p := 0; p < n; p++ {
			for _, c := range specials {
				for _, tail := range []string{`"`, `", "x":1}`, ""} {
					b := []byte(`"` + strings.Repeat("a", n) + tail)
					b[1+p] = c
					gs, gi, gok := plainString(b, 0)
					ws, wi, wok := ref(b, 0)
					if gs != ws || gi != wi || gok != wok {
						t.Errorf("plainString(%q) = %q, %d, %v; want %q, %d, %v", b, gs, gi, gok, ws, wi, wok)
					}
				}
			}
		}
	}
}
