// Package chserver starts and stops real, throw-away ClickHouse servers for
// tests and the demo.
//
// It drives deploy/local/clickhouse.sh, which runs Debian's clickhouse-server
// package (18.16 on bookworm) from a private directory on free loopback
// ports. Production runs ClickHouse 24.x: keep DDL free of 18.16-only
// settings; those live in the local server's default user profile (see the
// script).
//
// Typical test usage:
//
//	func TestMain(m *testing.M) { chserver.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		ch := chserver.Shared(t) // one server per test binary, started lazily
//		_, err := ch.Query(ctx, "CREATE TABLE ...")
//	}
//
// Tests that stop, kill or restart the server must use Private(t), never the
// shared server.
package chserver

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Environment variables understood by the package.
const (
	// EnvRepo points at the repository root (the directory holding go.mod and
	// deploy/local/clickhouse.sh). Optional; by default the root is found by
	// walking up from the working directory.
	EnvRepo = "LOGPIPE_REPO"
	// EnvAddr makes Shared use an existing server instead of starting one.
	// See ParseExternal for the accepted forms.
	EnvAddr = "LOGPIPE_CLICKHOUSE_ADDR"
	// EnvSkip, when non-empty, makes Shared and Private skip the test instead
	// of starting a server.
	EnvSkip = "LOGPIPE_SKIP_CLICKHOUSE"
	// EnvKeep, when non-empty, keeps the shared server's temporary directory
	// (data and logs) after StopShared.
	EnvKeep = "LOGPIPE_CLICKHOUSE_KEEP"
)

// ScriptRelPath is the location of the control script inside the repository.
const ScriptRelPath = "deploy/local/clickhouse.sh"

// ErrExternal is returned by lifecycle methods on a server that this package
// did not start (LOGPIPE_CLICKHOUSE_ADDR).
var ErrExternal = errors.New("chserver: not supported on an external server")

// ErrShared is returned by Stop, Kill, Start and Restart on the shared
// server: other tests depend on it. Use Private for destructive tests.
var ErrShared = errors.New("chserver: the shared server must not be stopped or restarted by a test; use Private")

// Options tune StartWithOptions.
type Options struct {
	// TCPPort and HTTPPort pin the ports (both or neither). Zero means: reuse
	// the ports recorded in DIR/ports.env if they are free, else pick free
	// ports.
	TCPPort, HTTPPort int
	// StopWithProcess starts a watchdog that stops the server once the
	// current process exits, even if it dies without cleaning up.
	StopWithProcess bool
	// StartTimeout bounds the wait for "SELECT 1" (default 60s).
	StartTimeout time.Duration
}

// Server is a running (or stopped) ClickHouse server.
type Server struct {
	Dir      string // private directory (config, data, logs); empty if External
	TCPAddr  string // native protocol, "127.0.0.1:PORT"
	HTTPAddr string // HTTP interface, "127.0.0.1:PORT"
	TCPPort  int
	HTTPPort int
	// External is true for a server given by LOGPIPE_CLICKHOUSE_ADDR: it is
	// never stopped by this package.
	External bool

	mu     sync.Mutex
	pid    int
	script string
	opts   Options
	shared bool
	httpc  *http.Client
}

// ScriptPath returns the absolute path of deploy/local/clickhouse.sh: from
// $LOGPIPE_REPO if set, else the first directory with a go.mod and the script
// walking up from the working directory, else relative to this source file.
func ScriptPath() (string, error) {
	if repo := os.Getenv(EnvRepo); repo != "" {
		p := filepath.Join(repo, ScriptRelPath)
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("chserver: %s=%s: %w", EnvRepo, repo, err)
		}
		return filepath.Abs(p)
	}
	if wd, err := os.Getwd(); err == nil {
		for dir := wd; ; {
			if fileExists(filepath.Join(dir, "go.mod")) && fileExists(filepath.Join(dir, ScriptRelPath)) {
				return filepath.Join(dir, ScriptRelPath), nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		p := filepath.Join(filepath.Dir(file), "..", "..", ScriptRelPath)
		if fileExists(p) {
			return filepath.Abs(p)
		}
	}
	return "", fmt.Errorf("chserver: cannot find %s (set %s to the repository root)", ScriptRelPath, EnvRepo)
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

var installed struct {
	mu   sync.Mutex
	done bool
}

// Install runs "clickhouse.sh install" (apt-get install clickhouse-server
// clickhouse-client if missing; needs root or password-less sudo then). It is
// cheap when the packages are present and runs at most once successfully per
// process.
func Install(ctx context.Context) error {
	installed.mu.Lock()
	defer installed.mu.Unlock()
	if installed.done {
		return nil
	}
	script, err := ScriptPath()
	if err != nil {
		return err
	}
	if _, err := runScript(ctx, script, nil, "install"); err != nil {
		return err
	}
	installed.done = true
	return nil
}

// Start installs ClickHouse if needed and starts a server in dir (created if
// missing). If a server from dir is already running it is reused.
func Start(ctx context.Context, dir string) (*Server, error) {
	return StartWithOptions(ctx, dir, Options{})
}

// StartWithOptions is Start with options.
func StartWithOptions(ctx context.Context, dir string, opts Options) (*Server, error) {
	if (opts.TCPPort == 0) != (opts.HTTPPort == 0) {
		return nil, errors.New("chserver: set both TCPPort and HTTPPort, or neither")
	}
	if err := Install(ctx); err != nil {
		return nil, err
	}
	script, err := ScriptPath()
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	s := &Server{Dir: abs, script: script, opts: opts}
	s.initHTTP()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.startLocked(ctx, opts.TCPPort, opts.HTTPPort); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Server) initHTTP() {
	tr := &http.Transport{
		Proxy:               nil, // always direct: the server is on loopback
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 8,
		// ClickHouse closes idle keep-alive connections after 3s.
		IdleConnTimeout: 2 * time.Second,
	}
	s.httpc = &http.Client{Transport: tr}
}

// startLocked runs "clickhouse.sh start" and loads ports and pid.
func (s *Server) startLocked(ctx context.Context, tcpPort, httpPort int) error {
	var env []string
	if tcpPort != 0 {
		env = append(env, "CH_TCP_PORT="+strconv.Itoa(tcpPort), "CH_HTTP_PORT="+strconv.Itoa(httpPort))
	}
	if s.opts.StopWithProcess {
		env = append(env, "CH_WATCH_PID="+strconv.Itoa(os.Getpid()))
	}
	if s.opts.StartTimeout > 0 {
		env = append(env, "CH_START_TIMEOUT="+strconv.Itoa(int((s.opts.StartTimeout+time.Second-1)/time.Second)))
	}
	if _, err := runScript(ctx, s.script, env, "start", s.Dir); err != nil {
		if ctx.Err() != nil {
			// The script was interrupted; don't leave a half-started server behind.
			stopCtx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
			_, _ = runScript(stopCtx, s.script, nil, "stop", s.Dir)
			cancel()
		}
		return err
	}
	ports, err := readEnvFile(filepath.Join(s.Dir, "ports.env"))
	if err != nil {
		return err
	}
	s.TCPPort, err = strconv.Atoi(ports["CH_TCP_PORT"])
	if err != nil {
		return fmt.Errorf("chserver: bad CH_TCP_PORT in %s/ports.env: %w", s.Dir, err)
	}
	s.HTTPPort, err = strconv.Atoi(ports["CH_HTTP_PORT"])
	if err != nil {
		return fmt.Errorf("chserver: bad CH_HTTP_PORT in %s/ports.env: %w", s.Dir, err)
	}
	s.TCPAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.TCPPort))
	s.HTTPAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.HTTPPort))
	pidText, err := os.ReadFile(filepath.Join(s.Dir, "server.pid"))
	if err != nil {
		return fmt.Errorf("chserver: %w", err)
	}
	s.pid, err = strconv.Atoi(strings.TrimSpace(string(pidText)))
	if err != nil {
		return fmt.Errorf("chserver: bad %s/server.pid: %w", s.Dir, err)
	}
	return nil
}

func readEnvFile(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("chserver: %w", err)
	}
	m := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "="); ok {
			m[k] = v
		}
	}
	return m, nil
}

// runScript runs the control script and returns its stdout. On failure the
// error carries stderr (which includes the server log tail).
func runScript(ctx context.Context, script string, env []string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "bash", append([]string{script}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = nil
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	// The server and watchdog redirect their fds, but never hang on a stray
	// inherited pipe.
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("chserver: %s %s: %w\n%s", filepath.Base(script), strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// PID returns the server's process id (0 if stopped or external).
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pid
}

func (s *Server) checkOwned() error {
	if s.External {
		return ErrExternal
	}
	if s.shared {
		return ErrShared
	}
	return nil
}

// Stop stops the server (SIGTERM, then SIGKILL after 30s). Stopping a
// stopped server is not an error. Data and ports.env are kept, so Start can
// bring it back.
func (s *Server) Stop() error {
	if err := s.checkOwned(); err != nil {
		return err
	}
	return s.stop()
}

func (s *Server) stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Idle keep-alive HTTP connections hold up a graceful shutdown for up to
	// keep_alive_timeout (3s); drop ours first.
	if s.httpc != nil {
		s.httpc.CloseIdleConnections()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, err := runScript(ctx, s.script, nil, "stop", s.Dir)
	s.afterDownLocked()
	return err
}

// Kill sends SIGKILL to the server and waits until it is gone (crash
// simulation). Start brings it back on the same ports.
func (s *Server) Kill() error {
	if err := s.checkOwned(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := runScript(ctx, s.script, nil, "kill", s.Dir)
	s.afterDownLocked()
	return err
}

func (s *Server) afterDownLocked() {
	s.pid = 0
	if s.httpc != nil {
		s.httpc.CloseIdleConnections()
	}
}

// Start starts a stopped (or killed) server again: same directory, same
// ports. It fails if one of the ports has been taken meanwhile. Starting a
// running server is a no-op.
func (s *Server) Start(ctx context.Context) error {
	if err := s.checkOwned(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.startLocked(ctx, s.TCPPort, s.HTTPPort)
}

// Restart is Stop followed by Start: same directory, same ports.
func (s *Server) Restart(ctx context.Context) error {
	if err := s.Stop(); err != nil {
		return err
	}
	return s.Start(ctx)
}

// ClientCommand returns a clickhouse-client command connected to the server,
// e.g. s.ClientCommand("-q", "SELECT 1").Output().
func (s *Server) ClientCommand(args ...string) *exec.Cmd {
	host, port, err := net.SplitHostPort(s.TCPAddr)
	if err != nil {
		host, port = s.TCPAddr, "9000"
	}
	bin := "clickhouse-client"
	if p, err := exec.LookPath(bin); err == nil {
		bin = p
	}
	return exec.Command(bin, append([]string{"--host", host, "--port", port}, args...)...)
}

// HTTPURL returns the base URL of the HTTP interface, "http://127.0.0.1:PORT/".
func (s *Server) HTTPURL() string { return "http://" + s.HTTPAddr + "/" }

// Query sends query (optionally followed by inline data, e.g.
// "INSERT INTO t FORMAT TSV\n1\tfoo\n") to the HTTP interface as the default
// user and returns the response body. Non-200 responses are errors carrying
// the server's message.
func (s *Server) Query(ctx context.Context, query string) (string, error) {
	return s.QueryAs(ctx, "", "", query)
}

// QueryAs is Query as the given user (HTTP basic auth). An empty user means
// the default user.
func (s *Server) QueryAs(ctx context.Context, user, password, query string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.HTTPURL(), strings.NewReader(query))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	c := s.httpc
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", fmt.Errorf("chserver: query %q: %w", abbrev(query), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("chserver: query %q: reading response: %w", abbrev(query), err)
	}
	if resp.StatusCode != http.StatusOK {
		return string(body), fmt.Errorf("chserver: query %q: HTTP %d: %s", abbrev(query), resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return string(body), nil
}

// Exec is Query discarding the result.
func (s *Server) Exec(ctx context.Context, query string) error {
	_, err := s.Query(ctx, query)
	return err
}

// Version returns SELECT version(), e.g. "18.16.1".
func (s *Server) Version(ctx context.Context) (string, error) {
	v, err := s.Query(ctx, "SELECT version()")
	return strings.TrimSpace(v), err
}

// Ping returns nil if the server answers SELECT 1.
func (s *Server) Ping(ctx context.Context) error {
	v, err := s.Query(ctx, "SELECT 1")
	if err != nil {
		return err
	}
	if strings.TrimSpace(v) != "1" {
		return fmt.Errorf("chserver: SELECT 1 returned %q", v)
	}
	return nil
}

// FlushLogs runs SYSTEM FLUSH LOGS so system.query_log is up to date.
func (s *Server) FlushLogs(ctx context.Context) error {
	return s.Exec(ctx, "SYSTEM FLUSH LOGS")
}

// AddUser adds a user with the default profile, reachable from localhost.
// ClickHouse 18.16 has no CREATE USER: the user is written to DIR/users.d and
// AddUser waits until the server has reloaded it (about 2s).
func (s *Server) AddUser(ctx context.Context, name, password string) error {
	if s.External {
		return ErrExternal
	}
	if _, err := runScript(ctx, s.script, nil, "add-user", s.Dir, name, password); err != nil {
		return err
	}
	for {
		_, err := s.QueryAs(ctx, name, password, "SELECT 1")
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("chserver: user %s not usable: %w (last error: %v)", name, ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// LogTail returns the last n lines of the server's error log and stdout.
func (s *Server) LogTail(n int) string {
	if s.External {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := runScript(ctx, s.script, nil, "logs", s.Dir, strconv.Itoa(n))
	if err != nil {
		return err.Error()
	}
	return out
}

// RSS returns the server's resident set size in bytes (from /proc).
func (s *Server) RSS() (int64, error) {
	pid := s.PID()
	if pid == 0 {
		return 0, errors.New("chserver: server not running (or external)")
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) == 2 && f[1] == "kB" {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				return kb * 1024, err
			}
		}
	}
	return 0, errors.New("chserver: no VmRSS in /proc status")
}

// ParseExternal parses a LOGPIPE_CLICKHOUSE_ADDR value into an external
// Server. The value is a comma-separated list of addresses:
//
//	host:port                native protocol (also "tcp://host:port", "clickhouse://host:port")
//	http://host:port         HTTP interface
//
// A missing native address defaults to host:9000, a missing HTTP address to
// host:8123, taking the host from the other one.
func ParseExternal(v string) (*Server, error) {
	s := &Server{External: true}
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		isHTTP := false
		if strings.Contains(item, "://") {
			u, err := url.Parse(item)
			if err != nil {
				return nil, fmt.Errorf("chserver: %s: %w", EnvAddr, err)
			}
			switch u.Scheme {
			case "http":
				isHTTP = true
			case "tcp", "clickhouse":
			default:
				return nil, fmt.Errorf("chserver: %s: unsupported scheme %q", EnvAddr, u.Scheme)
			}
			item = u.Host
		}
		host, port, err := net.SplitHostPort(item)
		if err != nil {
			return nil, fmt.Errorf("chserver: %s: %q: %w", EnvAddr, item, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, fmt.Errorf("chserver: %s: bad port in %q", EnvAddr, item)
		}
		if isHTTP {
			s.HTTPAddr, s.HTTPPort = net.JoinHostPort(host, port), p
		} else {
			s.TCPAddr, s.TCPPort = net.JoinHostPort(host, port), p
		}
	}
	switch {
	case s.TCPAddr == "" && s.HTTPAddr == "":
		return nil, fmt.Errorf("chserver: %s is empty", EnvAddr)
	case s.TCPAddr == "":
		host, _, _ := net.SplitHostPort(s.HTTPAddr)
		s.TCPAddr, s.TCPPort = net.JoinHostPort(host, "9000"), 9000
	case s.HTTPAddr == "":
		host, _, _ := net.SplitHostPort(s.TCPAddr)
		s.HTTPAddr, s.HTTPPort = net.JoinHostPort(host, "8123"), 8123
	}
	s.initHTTP()
	return s, nil
}

func abbrev(q string) string {
	q = strings.Join(strings.Fields(q), " ")
	if len(q) > 80 {
		return q[:77] + "..."
	}
	return q
}
