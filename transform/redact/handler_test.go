package redact

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func TestHandler(t *testing.T) {
	r := testRedactor(t)
	var buf bytes.Buffer
	log := slog.New(NewHandler(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}), r))
	log = log.With("line", `{"client_ip":"203.0.113.5","token":"T0K3N-abc"}`).WithGroup("g")
	log.Debug("rejected from 198.51.100.7 mail a.b@example.com",
		"err", errors.New("parse: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig at 2001:db8::7"),
		slog.Group("req", "referer", "https://x.example/?refresh_token=RTRTRT", "n", 3),
		"any", []string{"AKIAIOSFODNN7EXAMPLE"},
		"broker", "dial tcp 127.0.0.1:9092 and 10.1.2.3:9000 and [::1]:9000")
	out := buf.String()
	for _, secret := range []string{"203.0.113.5", "T0K3N-abc", "198.51.100.7", "a.b@example.com", "eyJhbGciOiJIUzI1NiJ9", "2001:db8::7", "RTRTRT", "AKIAIOSFODNN7EXAMPLE"} {
		if strings.Contains(out, secret) {
			t.Errorf("log keeps %q in clear:\n%s", secret, out)
		}
	}
	for _, keep := range []string{"127.0.0.1:9092", "10.1.2.3:9000", "[::1]:9000", "n=3", "g.req.referer="} {
		if !strings.Contains(out, keep) {
			t.Errorf("log lost %q:\n%s", keep, out)
		}
	}
}
