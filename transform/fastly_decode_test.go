package transform

import (
	"reflect"
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
