// Package chdbtest runs SQL on an embedded modern ClickHouse (chdb's
// libchdb.so, 26.x) inside the test process, so tests prove at the SQL level
// that migrations, catalogue queries and inserts work on the servers users
// run, next to the end-to-end tests on the local 18.16 server
// (internal/chserver). There is no native-protocol server in it: tests send
// SQL text and read TabSeparated answers.
//
// libchdb.so (~560 MB) lives outside the repository; deploy/local/chdb.sh
// install (run by make test) puts it under ~/.cache/logpipe-chdb/<Version>/.
// LOGPIPE_CHDB_LIB (or chdb-go's CHDB_LIB_PATH) points at another copy.
//
// libchdb holds one session per process, and that session runs one query at a
// time: every Engine shares it, each with a database of its own, and all
// calls are serialised on a process-wide lock (tests may run in parallel;
// their queries take turns).
package chdbtest

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/logpipe/logpipe/chclient"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
)

// Engine is a test's view of the embedded ClickHouse: its own database in
// the process-wide session. Statements without a database name act on it.
type Engine struct {
	s  *session
	db string
}

type session struct {
	c       *conn
	version string
	// mu is held for the USE + statement pair, so no other Engine's
	// statement runs in between (conn.mu only covers one call).
	mu sync.Mutex
}

var shared struct {
	once sync.Once
	s    *session
	err  error
}

var dbSeq atomic.Int64

// dirPrefix names the engine's data directories under os.TempDir(): the
// session lives as long as the process, so nothing removes its directory at
// exit; the next process to open the engine removes those of processes that
// are gone.
const dirPrefix = "logpipe-chdb-"

// dataDir makes this process's data directory, after removing those left
// by exited processes.
func dataDir() (string, error) {
	old, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, d := range old {
		pid, _, _ := strings.Cut(strings.TrimPrefix(filepath.Base(d), dirPrefix), "-")
		if n, err := strconv.Atoi(pid); err == nil && n != os.Getpid() && !alive(n) {
			os.RemoveAll(d)
		}
	}
	dir, err := os.MkdirTemp("", fmt.Sprintf("%s%d-", dirPrefix, os.Getpid()))
	if err != nil {
		return "", fmt.Errorf("chdbtest: %w", err)
	}
	return dir, nil
}

// alive reports whether process pid exists.
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// sharedSession opens the process-wide chdb session on first use.
func sharedSession() (*session, error) {
	shared.once.Do(func() {
		l, err := load()
		if err != nil {
			shared.err = err
			return
		}
		dir, err := dataDir()
		if err != nil {
			shared.err = err
			return
		}
		c, err := connect(l, "--path="+dir)
		if err != nil {
			shared.err = err
			return
		}
		// Same time zone as the local 18.16 server (deploy/local/clickhouse.sh),
		// so both engines render times alike.
		if _, err := c.query("SET session_timezone = 'UTC'", "TSV"); err != nil {
			shared.err = fmt.Errorf("chdbtest: %w", err)
			return
		}
		out, err := c.query("SELECT version()", "TSV")
		if err != nil {
			shared.err = fmt.Errorf("chdbtest: SELECT version(): %w", err)
			return
		}
		shared.s = &session{c: c, version: strings.TrimSpace(string(out))}
	})
	return shared.s, shared.err
}

// Available reports whether the embedded engine can be opened (nil) or why
// not, without failing anything.
func Available() error {
	_, err := sharedSession()
	return err
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9_]+`)

// Open returns an Engine with a fresh database named after the test, dropped
// when the test ends. It skips the test under -short; otherwise a missing
// libchdb.so fails the test with the command that installs it.
func Open(t testing.TB) *Engine {
	t.Helper()
	if testing.Short() {
		t.Skip("chdbtest: embedded modern ClickHouse not used with -short")
	}
	s, err := sharedSession()
	if err != nil {
		t.Fatal(err)
	}
	name := unsafeChars.ReplaceAllString(t.Name(), "_")
	if len(name) > 60 {
		name = name[:60]
	}
	db := fmt.Sprintf("t%d_%s", dbSeq.Add(1), name)
	e := &Engine{s: s, db: db}
	if _, err := s.c.query("CREATE DATABASE "+chclient.QuotedIdent(db), "TSV"); err != nil {
		t.Fatalf("chdbtest: create database %s: %v", db, err)
	}
	t.Cleanup(func() {
		if _, err := s.c.query("DROP DATABASE IF EXISTS "+chclient.QuotedIdent(db), "TSV"); err != nil {
			t.Errorf("chdbtest: drop database %s: %v", db, err)
		}
	})
	return e
}

// Version is the engine's SELECT version(), e.g. "26.5.1.1".
func (e *Engine) Version() string { return e.s.version }

// Database is the Engine's own database (the current database of its
// statements).
func (e *Engine) Database() string { return e.db }

// Exec runs sql (one statement, or several separated by semicolons) and
// discards any output. Data for INSERT ... FORMAT may follow the statement
// in the text, as with clickhouse-client; binary data can't (the text is
// passed as a C string), use INSERT INTO t FROM INFILE 'path' FORMAT Native
// or RowBinary instead.
func (e *Engine) Exec(sql string) error {
	_, err := e.Raw(sql, "TSV")
	return err
}

// Query runs sql and returns its rows, each a slice of column values as
// TabSeparated prints them (escape sequences decoded; NULL is `\N`).
func (e *Engine) Query(sql string) ([][]string, error) {
	out, err := e.Raw(sql, "TabSeparated")
	if err != nil {
		return nil, err
	}
	return ParseTSV(out), nil
}

// Raw runs sql with the Engine's database current and returns the output in
// format (any ClickHouse output format: "TSV", "JSONEachRow", "Native", ...).
// The error is ClickHouse's message, e.g. "Code: 47. DB::Exception: ...".
func (e *Engine) Raw(sql, format string) ([]byte, error) {
	e.s.mu.Lock()
	defer e.s.mu.Unlock()
	if _, err := e.s.c.query("USE "+chclient.QuotedIdent(e.db), "TSV"); err != nil {
		return nil, fmt.Errorf("chdbtest: USE %s: %w", e.db, err)
	}
	return e.s.c.query(sql, format)
}

// MustExec is Exec that fails the test on error, naming the statement.
func (e *Engine) MustExec(t testing.TB, sql string) {
	t.Helper()
	if err := e.Exec(sql); err != nil {
		t.Fatalf("chdbtest: %v\nstatement:\n%s", err, sql)
	}
}

// MustQuery is Query that fails the test on error, naming the statement.
func (e *Engine) MustQuery(t testing.TB, sql string) [][]string {
	t.Helper()
	rows, err := e.Query(sql)
	if err != nil {
		t.Fatalf("chdbtest: %v\nquery:\n%s", err, sql)
	}
	return rows
}

// ParseTSV splits TabSeparated output into rows of decoded values.
func ParseTSV(out []byte) [][]string {
	if len(out) == 0 {
		return nil
	}
	out = bytes.TrimSuffix(out, []byte("\n"))
	var rows [][]string
	for _, line := range bytes.Split(out, []byte("\n")) {
		fields := strings.Split(string(line), "\t")
		for i, f := range fields {
			fields[i] = unescapeTSV(f)
		}
		rows = append(rows, fields)
	}
	return rows
}

func unescapeTSV(s string) string {
	if s == `\N` || !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		i++
		switch s[i] {
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case '0':
			b.WriteByte(0)
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}
