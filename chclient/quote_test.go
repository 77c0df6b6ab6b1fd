package chclient_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/logpipe/logpipe/chclient"
	"github.com/logpipe/logpipe/internal/chdbtest"
	"github.com/logpipe/logpipe/internal/chserver"
)

// quoteCases are the strings every quoting must carry unchanged: each
// byte 0..255 alone and between letters, all of them in one string, and
// the escapes' own characters in a row.
func quoteCases() []string {
	var out []string
	all := make([]byte, 256)
	for b := range 256 {
		out = append(out, string([]byte{byte(b)}), "a"+string([]byte{byte(b)})+"z")
		all[b] = byte(b)
	}
	return append(out, string(all), `\'`+"`"+`\\x41\n`, "''", "``", `\`, "")
}

func TestQuoteUnit(t *testing.T) {
	for _, tc := range []struct{ in, str, ident string }{
		{"logs", "'logs'", "logs"},
		{"my-db", "'my-db'", "`my-db`"},
		{"_x1", "'_x1'", "_x1"},
		{"1x", "'1x'", "`1x`"},
		{"", "''", "``"},
		{`a'b\c`, `'a\'b\\c'`, "`a'b\\\\c`"},
		{"a`b", "'a`b'", "`a\\`b`"},
		{"tab\there\n", `'tab\x09here\x0A'`, "`tab\\x09here\\x0A`"},
		{"été", "'été'", "`été`"},
	} {
		if got := chclient.String(tc.in); got != tc.str {
			t.Errorf("String(%q) = %s, want %s", tc.in, got, tc.str)
		}
		if got := chclient.Ident(tc.in); got != tc.ident {
			t.Errorf("Ident(%q) = %s, want %s", tc.in, got, tc.ident)
		}
		want := tc.ident
		if !strings.HasPrefix(want, "`") {
			want = "`" + want + "`"
		}
		if got := chclient.QuotedIdent(tc.in); got != want {
			t.Errorf("QuotedIdent(%q) = %s, want %s", tc.in, got, want)
		}
	}
}

// TestQuoteRoundTrip sends every byte in a string literal and in an
// identifier (a column alias) to the oldest supported server (18.16) and
// reads each back unchanged.
func TestQuoteRoundTrip(t *testing.T) {
	if testing.Short() {
		t.Skip("needs ClickHouse")
	}
	srv := chserver.Shared(t)
	ctx := context.Background()
	conn, err := chclient.Open(ctx, chclient.Options{Addr: []string{srv.TCPAddr}, Database: "default"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, s := range quoteCases() {
		got, err := chclient.Value[string](ctx, conn, "SELECT hex("+chclient.String(s)+")")
		if err != nil {
			t.Errorf("literal %q: %v", s, err)
		} else if want := strings.ToUpper(hex.EncodeToString([]byte(s))); got != want {
			t.Errorf("literal %q: server read %s, want %s", s, got, want)
		}
		if s == "" {
			continue // no server takes an empty name
		}
		for _, q := range []func(string) string{chclient.Ident, chclient.QuotedIdent} {
			rows, err := conn.Rows(ctx, "SELECT 1 AS "+q(s))
			if err != nil {
				t.Errorf("identifier %s: %v", q(s), err)
				continue
			}
			if cols := rows.Columns(); len(cols) != 1 || cols[0] != s {
				t.Errorf("identifier %s: server named the column %q", q(s), cols)
			}
			rows.Close()
		}
	}
}

// TestQuoteRoundTripModern is TestQuoteRoundTrip on the embedded modern
// engine (26.x).
func TestQuoteRoundTripModern(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the embedded engine")
	}
	if err := chdbtest.Available(); err != nil {
		t.Skip(err)
	}
	e := chdbtest.Open(t)
	for _, s := range quoteCases() {
		rows, err := e.Query("SELECT hex(" + chclient.String(s) + ")")
		if err != nil {
			t.Errorf("literal %q: %v", s, err)
		} else if want := strings.ToUpper(hex.EncodeToString([]byte(s))); len(rows) != 1 || rows[0][0] != want {
			t.Errorf("literal %q: engine read %v, want %s", s, rows, want)
		}
		if s == "" {
			continue
		}
		for _, q := range []func(string) string{chclient.Ident, chclient.QuotedIdent} {
			out, err := e.Raw("SELECT 1 AS "+q(s), "TabSeparatedWithNames")
			if err != nil {
				t.Errorf("identifier %s: %v", q(s), err)
				continue
			}
			if all := chdbtest.ParseTSV(out); len(all) == 0 || len(all[0]) != 1 || all[0][0] != s {
				t.Errorf("identifier %s: engine named the column %s", q(s), fmt.Sprintf("%q", all))
			}
		}
	}
}
