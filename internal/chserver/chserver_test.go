package chserver

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) { Main(m) }

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// httpQuery talks to the HTTP interface with plain net/http (no helpers).
func httpQuery(t *testing.T, addr, query string) string {
	t.Helper()
	resp, err := http.Post("http://"+addr+"/", "text/plain", strings.NewReader(query))
	if err != nil {
		t.Fatalf("POST %q: %v", query, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %q: HTTP %d: %s", query, resp.StatusCode, body)
	}
	return string(body)
}

func assertClosed(t *testing.T, addrs ...string) {
	t.Helper()
	for _, a := range addrs {
		c, err := net.DialTimeout("tcp", a, time.Second)
		if err == nil {
			c.Close()
			t.Errorf("%s still accepts connections", a)
		}
	}
}

var versionRE = regexp.MustCompile(`^\d+\.\d+`)

func TestLifecycle(t *testing.T) {
	skipIfDisabled(t)
	if os.Getenv(EnvAddr) != "" {
		t.Skipf("%s is set", EnvAddr)
	}
	ctx := testCtx(t)
	dir := t.TempDir()

	t0 := time.Now()
	s, err := Start(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	startTime := time.Since(t0)
	t.Cleanup(func() { _ = s.Stop() })
	t.Logf("started in %v: pid %d, tcp %s, http %s, dir %s", startTime.Round(time.Millisecond), s.PID(), s.TCPAddr, s.HTTPAddr, s.Dir)

	// SELECT version() over plain net/http.
	resp, err := http.Get("http://" + s.HTTPAddr + "/?query=" + url.QueryEscape("SELECT version()"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	version := strings.TrimSpace(string(body))
	if resp.StatusCode != http.StatusOK || !versionRE.MatchString(version) {
		t.Fatalf("SELECT version(): HTTP %d %q", resp.StatusCode, body)
	}
	t.Logf("server version %s", version)

	time.Sleep(time.Second) // let startup settle before measuring
	if rss, err := s.RSS(); err != nil {
		t.Errorf("RSS: %v", err)
	} else {
		t.Logf("idle RSS %.1f MiB", float64(rss)/(1<<20))
	}

	// LowCardinality with no SETTINGS in the DDL: the profile enables it on 18.16.
	httpQuery(t, s.HTTPAddr, `CREATE TABLE lc_test (
		ts DateTime,
		service LowCardinality(String),
		msg String
	) ENGINE = MergeTree ORDER BY (service, ts)`)
	httpQuery(t, s.HTTPAddr, "INSERT INTO lc_test FORMAT TSV\n2024-01-02 03:04:05\tapi\thello\n")
	got := httpQuery(t, s.HTTPAddr, "SELECT ts, service, msg, toTypeName(service) FROM lc_test FORMAT TSV")
	if want := "2024-01-02 03:04:05\tapi\thello\tLowCardinality(String)\n"; got != want {
		t.Fatalf("read back %q, want %q", got, want)
	}

	// clickhouse-client against the same server.
	out, err := s.ClientCommand("-q", "SELECT count() FROM lc_test").Output()
	if err != nil || strings.TrimSpace(string(out)) != "1" {
		t.Fatalf("clickhouse-client: %q, %v", out, err)
	}

	// system.query_log records the queries (log_queries=1 in the profile).
	if err := s.FlushLogs(ctx); err != nil {
		t.Fatal(err)
	}
	n, err := s.Query(ctx, "SELECT count() FROM system.query_log WHERE toUInt8(type) = 2 AND query LIKE '%FROM lc_test%'")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(n) == "0" {
		t.Errorf("system.query_log has no finished queries on lc_test")
	}

	// Crash and come back on the same ports with the data intact.
	tcp, httpAddr := s.TCPAddr, s.HTTPAddr
	if err := s.Kill(); err != nil {
		t.Fatal(err)
	}
	assertClosed(t, tcp, httpAddr)
	t0 = time.Now()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("restart after SIGKILL took %v", time.Since(t0).Round(time.Millisecond))
	if s.TCPAddr != tcp || s.HTTPAddr != httpAddr {
		t.Fatalf("ports changed after Start: %s %s -> %s %s", tcp, httpAddr, s.TCPAddr, s.HTTPAddr)
	}
	if got := httpQuery(t, s.HTTPAddr, "SELECT count() FROM lc_test"); got != "1\n" {
		t.Fatalf("after kill+start: count %q", got)
	}

	// Graceful restart. Idle keep-alive connections (here: http.DefaultClient's)
	// delay a graceful shutdown by up to keep_alive_timeout (3s).
	http.DefaultClient.CloseIdleConnections()
	t0 = time.Now()
	if err := s.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("Restart took %v", time.Since(t0).Round(time.Millisecond))
	if s.TCPAddr != tcp || s.HTTPAddr != httpAddr {
		t.Fatalf("ports changed after Restart")
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}

	// Stop closes the ports; stopping twice is fine.
	http.DefaultClient.CloseIdleConnections()
	t0 = time.Now()
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("Stop took %v", time.Since(t0).Round(time.Millisecond))
	assertClosed(t, tcp, httpAddr)
	if s.PID() != 0 {
		t.Errorf("PID after Stop = %d", s.PID())
	}
	if err := s.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestStartIsIdempotent(t *testing.T) {
	s := Private(t)
	ctx := testCtx(t)
	again, err := Start(ctx, s.Dir) // same dir, already running
	if err != nil {
		t.Fatal(err)
	}
	if again.PID() != s.PID() || again.TCPAddr != s.TCPAddr || again.HTTPAddr != s.HTTPAddr {
		t.Fatalf("second Start: pid %d %s %s, want pid %d %s %s",
			again.PID(), again.TCPAddr, again.HTTPAddr, s.PID(), s.TCPAddr, s.HTTPAddr)
	}
}

func TestShared(t *testing.T) {
	s := Shared(t)
	if Shared(t) != s {
		t.Fatal("Shared returned a different server")
	}
	ctx := testCtx(t)
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	want := ErrShared
	if s.External {
		want = ErrExternal
	}
	for name, err := range map[string]error{"Stop": s.Stop(), "Kill": s.Kill(), "Restart": s.Restart(ctx)} {
		if !errors.Is(err, want) {
			t.Errorf("%s on shared server: %v, want %v", name, err, want)
		}
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"CREATE DATABASE IF NOT EXISTS chserver_shared",
		"DROP TABLE IF EXISTS chserver_shared.t",
		"CREATE TABLE chserver_shared.t (svc LowCardinality(String), n UInt64) ENGINE = MergeTree ORDER BY svc",
		"INSERT INTO chserver_shared.t FORMAT JSONEachRow\n{\"svc\":\"a\",\"n\":1}\n{\"svc\":\"b\",\"n\":2}\n",
	} {
		if err := s.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Query(ctx, "SELECT svc, sum(n) FROM chserver_shared.t GROUP BY svc ORDER BY svc FORMAT TSV")
	if err != nil {
		t.Fatal(err)
	}
	if got != "a\t1\nb\t2\n" {
		t.Fatalf("got %q", got)
	}
	// Errors carry the server's message.
	if _, err := s.Query(ctx, "SELECT no_such_column"); err == nil || !strings.Contains(err.Error(), "no_such_column") {
		t.Fatalf("bad query error: %v", err)
	}
}

func TestAddUser(t *testing.T) {
	s := Shared(t)
	if s.External {
		t.Skip("external server")
	}
	ctx := testCtx(t)
	const user, pass = "chserver_alice", `p&<"w>`
	if err := s.AddUser(ctx, user, pass); err != nil {
		t.Fatal(err)
	}
	if _, err := s.QueryAs(ctx, user, pass, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.QueryAs(ctx, user, "wrong", "SELECT 1"); err == nil {
		t.Fatal("wrong password accepted")
	}
}

func TestParseExternal(t *testing.T) {
	for _, tc := range []struct{ in, tcp, http string }{
		{"db:9000", "db:9000", "db:8123"},
		{"tcp://db:19000", "db:19000", "db:8123"},
		{"http://db:18123", "db:9000", "db:18123"},
		{"127.0.0.1:9001, http://127.0.0.1:8124", "127.0.0.1:9001", "127.0.0.1:8124"},
		{"clickhouse://[::1]:9000", "[::1]:9000", "[::1]:8123"},
	} {
		s, err := ParseExternal(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if !s.External || s.TCPAddr != tc.tcp || s.HTTPAddr != tc.http {
			t.Errorf("%q: tcp %q http %q external %v, want %q %q", tc.in, s.TCPAddr, s.HTTPAddr, s.External, tc.tcp, tc.http)
		}
		if err := s.Stop(); !errors.Is(err, ErrExternal) {
			t.Errorf("%q: Stop = %v, want ErrExternal", tc.in, err)
		}
	}
	for _, bad := range []string{"", "nohost", "https://db:8443", "db:port"} {
		if _, err := ParseExternal(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestScriptPath(t *testing.T) {
	p, err := ScriptPath()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(p, ScriptRelPath) {
		t.Fatalf("ScriptPath = %s", p)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
	root := strings.TrimSuffix(p, ScriptRelPath)
	t.Chdir(os.TempDir()) // no go.mod above: must come from LOGPIPE_REPO
	t.Setenv(EnvRepo, root)
	if p2, err := ScriptPath(); err != nil || p2 != p {
		t.Fatalf("with %s=%s: %q, %v", EnvRepo, root, p2, err)
	}
	t.Setenv(EnvRepo, os.TempDir())
	if _, err := ScriptPath(); err == nil {
		t.Fatalf("bogus %s accepted", EnvRepo)
	}
}
