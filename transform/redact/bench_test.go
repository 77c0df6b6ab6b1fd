package redact

import (
	"fmt"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

// BenchmarkString measures one scan, without caches: clean values of
// each kind, and a dirty dead letter (secrets of every shape).
func BenchmarkString(b *testing.B) {
	r := testRedactor(b)
	for _, c := range []struct{ name, s string }{
		{"clean-url", "/items/m12345678901?page=2&sort=new&utm_source=mail"},
		{"clean-ua", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.109 Safari/537.36"},
		{"clean-json-line", `{"timestamp":"2026-11-20T05:00:01.000Z","host":"www.example.jp","url":"/items/m10000000001?page=2","request_method":"GET","response_state":"MISS","response_status":200,"response_body_size":1234,"response_cache_control":"no-cache"}`},
		{"dirty-line", `{"client_ip":"203.0.113.9","request_cookie":"session=abc; x=1","url":"/a?token=T0K3N&x=1&email=taro%40example.com","auth":"Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig","note":"from 2001:db8::1 key AKIAIOSFODNN7EXAMPLE"}`},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.s)))
			b.ReportAllocs()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			b.ResetTimer()
			start := threadNs()
			for i := 0; i < b.N; i++ {
				_ = r.String(c.s)
			}
			// CPU time per op: on a shared machine wall time also counts
			// waiting for a core.
			b.ReportMetric(float64(threadNs()-start)/float64(b.N), "cpu-ns/op")
		})
	}
}

func threadNs() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(1, &ru) // RUSAGE_THREAD
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkPathological: dead letters built to make a scanner quadratic
// (many weak keys, encoded separators, colons, prefixes). Cost per byte
// must not grow with the size: compare the 4 KiB and 64 KiB cases.
func BenchmarkPathological(b *testing.B) {
	r := testRedactor(b)
	units := map[string]string{
		"weak-keys": "key=key=", "quoted-weak": `key="a=`, "encoded-at": "a%40", "at": "a@b.", "colons": "1:2:", "jwt-prefix": "eyJ.",
		"ipv4ish": "1.1.", "bearer": "Bearer ", "cookie": "cookie=a=b;",
	}
	for name, u := range units {
		for _, size := range []int{4 << 10, 64 << 10} {
			s := strings.Repeat(u, size/len(u))
			b.Run(fmt.Sprintf("%s/%dKiB", name, size>>10), func(b *testing.B) {
				b.SetBytes(int64(len(s)))
				for i := 0; i < b.N; i++ {
					_ = r.String(s)
				}
			})
		}
	}
}
