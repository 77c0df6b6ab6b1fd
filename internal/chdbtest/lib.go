package chdbtest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"
)

// Version is the @chdb/lib-linux-x64-gnu release deploy/local/chdb.sh
// installs; keep the two in step.
const Version = "26.5.3"

// Environment variables naming libchdb.so, first one set wins.
const (
	EnvLib       = "LOGPIPE_CHDB_LIB"
	EnvLibChdbGo = "CHDB_LIB_PATH" // the variable chdb-go's own binding reads
)

// LibPath returns the libchdb.so this process uses: $LOGPIPE_CHDB_LIB, else
// $CHDB_LIB_PATH, else the copy deploy/local/chdb.sh installs under
// ~/.cache/logpipe-chdb/<Version>/package/.
func LibPath() string {
	for _, env := range []string{EnvLib, EnvLibChdbGo} {
		if v := os.Getenv(env); v != "" {
			return v
		}
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = "/root"
	}
	return filepath.Join(home, ".cache", "logpipe-chdb", Version, "package", "libchdb.so")
}

// lib is the loaded library's C API (the non-deprecated part of chdb.h),
// bound with purego so no cgo is needed. chdb-go's chdb-purego package binds
// the same functions, but it opens the library in its init function and
// panics when it is missing, which would crash every test binary importing
// this package (even with -short) on a machine without the library; here the
// library is opened on first use, and a missing one is a test failure that
// says how to install it.
type lib struct {
	connect       func(argc int32, argv []*byte) *unsafe.Pointer
	closeConn     func(conn *unsafe.Pointer)
	query         func(conn unsafe.Pointer, query string, format string) unsafe.Pointer
	destroyResult func(res unsafe.Pointer)
	resultBuffer  func(res unsafe.Pointer) unsafe.Pointer
	resultLength  func(res unsafe.Pointer) uintptr
	resultError   func(res unsafe.Pointer) string
}

var loaded struct {
	once sync.Once
	lib  *lib
	err  error
}

// load opens libchdb.so once per process.
func load() (*lib, error) {
	loaded.once.Do(func() {
		path := LibPath()
		if _, err := os.Stat(path); err != nil {
			loaded.err = fmt.Errorf("chdbtest: libchdb.so not found at %s (%v); install it with `bash deploy/local/chdb.sh install` (make test does), or point %s at a libchdb.so", path, err, EnvLib)
			return
		}
		h, err := purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if err != nil {
			loaded.err = fmt.Errorf("chdbtest: opening %s: %w", path, err)
			return
		}
		l := &lib{}
		for _, f := range []struct {
			fn   any
			name string
		}{
			{&l.connect, "chdb_connect"},
			{&l.closeConn, "chdb_close_conn"},
			{&l.query, "chdb_query"},
			{&l.destroyResult, "chdb_destroy_query_result"},
			{&l.resultBuffer, "chdb_result_buffer"},
			{&l.resultLength, "chdb_result_length"},
			{&l.resultError, "chdb_result_error"},
		} {
			sym, err := purego.Dlsym(h, f.name)
			if err != nil {
				loaded.err = fmt.Errorf("chdbtest: %s lacks %s: %w", path, f.name, err)
				return
			}
			purego.RegisterFunc(f.fn, sym)
		}
		loaded.lib = l
	})
	return loaded.lib, loaded.err
}

// conn is one chdb session. libchdb keeps a single session per process
// (connecting again closes the previous one), and a session runs one query
// at a time, so callers serialise on mu.
type conn struct {
	mu  sync.Mutex
	lib *lib
	c   *unsafe.Pointer
}

func connect(l *lib, args ...string) (*conn, error) {
	argv := make([]*byte, 0, len(args)+1)
	for _, a := range append([]string{"clickhouse"}, args...) {
		b := append([]byte(a), 0)
		argv = append(argv, &b[0])
	}
	c := l.connect(int32(len(argv)), argv)
	if c == nil || *c == nil {
		return nil, errors.New("chdbtest: chdb_connect failed")
	}
	return &conn{lib: l, c: c}, nil
}

// query runs one statement and returns its output in format.
func (c *conn) query(sql, format string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	res := c.lib.query(*c.c, sql, format)
	if res == nil {
		return nil, errors.New("chdbtest: chdb_query returned no result")
	}
	defer c.lib.destroyResult(res)
	if msg := c.lib.resultError(res); msg != "" {
		return nil, errors.New(msg)
	}
	n := c.lib.resultLength(res)
	buf := c.lib.resultBuffer(res)
	if n == 0 || buf == nil {
		return nil, nil
	}
	return append([]byte(nil), unsafe.Slice((*byte)(buf), n)...), nil
}
