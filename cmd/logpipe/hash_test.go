package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/logpipe/logpipe/transform"
)

// TestHashMatchesStoredHash: logpipe hash prints for a session id the same
// number the enricher stores as session_hash for a request carrying that
// cookie, with the key read from a key file as logpipe run reads it
// (hex, trailing newline).
func TestHashMatchesStoredHash(t *testing.T) {
	for _, tt := range []struct {
		name, file string
		key        []byte // as logpipe run derives it
	}{
		{"hex key", "00112233445566778899aabbccddeeff0011\n", []byte{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x00, 0x11}},
		{"text key", "a passphrase of some length\r\n", []byte("a passphrase of some length")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			keyFile := filepath.Join(t.TempDir(), "hash.key")
			if err := os.WriteFile(keyFile, []byte(tt.file), 0o600); err != nil {
				t.Fatal(err)
			}
			ids := []string{"s3cr3t-session-1", "", "user:42"}
			var out bytes.Buffer
			if err := cmdHash(context.Background(), []string{"-key-file", keyFile}, strings.NewReader(strings.Join(ids, "\n")+"\n"), &out); err != nil {
				t.Fatal(err)
			}
			enr, err := transform.NewEnricher(transform.EnrichConfig{HashKey: tt.key, SessionCookies: []string{"session"}})
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, id := range ids {
				r := transform.CDNRequest{Path: "/mypage"}
				if id != "" {
					r.Secret.Cookie = "theme=dark; session=" + id
				}
				enr.CDN(&r)
				want = append(want, fmt.Sprintf("%s\t%d", id, r.SessionHash))
			}
			if got := strings.TrimSuffix(out.String(), "\n"); got != strings.Join(want, "\n") {
				t.Errorf("got:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
			}
			if strings.HasSuffix(strings.Split(out.String(), "\n")[0], "\t0") {
				t.Errorf("a session id hashed to 0 (none): %q", out.String())
			}
		})
	}
}

func TestHashNeedsAKey(t *testing.T) {
	t.Setenv("LOGPIPE_HASH_KEY", "")
	err := cmdHash(context.Background(), nil, strings.NewReader("x\n"), &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "-key-file") {
		t.Fatalf("err = %v, want one naming -key-file", err)
	}
}
