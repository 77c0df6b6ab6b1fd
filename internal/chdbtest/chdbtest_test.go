package chdbtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

func TestEngineBasics(t *testing.T) {
	e := Open(t)
	if !strings.HasPrefix(e.Version(), "2") {
		t.Fatalf("version %q, want a modern (2x.y) ClickHouse", e.Version())
	}
	// The TTL must not expire the rows by the engine's real clock (nor
	// overflow DateTime, which ends in 2106).
	e.MustExec(t, "CREATE TABLE t (a UInt8, s String, ts DateTime64(3, 'UTC')) ENGINE = MergeTree ORDER BY a TTL toDateTime(ts) + INTERVAL 10 YEAR SETTINGS ttl_only_drop_parts = 1")
	e.MustExec(t, "INSERT INTO t FORMAT TSV\n2\ttab\\there\t2026-01-02 03:04:05.678\n1\t\t2026-01-01 00:00:00\n")
	got := e.MustQuery(t, "SELECT a, s, ts, currentDatabase() = '"+e.Database()+"' FROM t ORDER BY a")
	want := [][]string{{"1", "", "2026-01-01 00:00:00.000", "1"}, {"2", "tab\there", "2026-01-02 03:04:05.678", "1"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("rows %q, want %q", got, want)
	}
	if err := e.Exec("SELECT no_such_column FROM t"); err == nil || !strings.Contains(err.Error(), "no_such_column") {
		t.Fatalf("bad SQL gave %v, want an error naming the column", err)
	}
	if got := e.MustQuery(t, "SELECT timezone()"); got[0][0] != "UTC" {
		t.Fatalf("timezone %q, want UTC like the local 18.16 server", got[0][0])
	}
}

// Engines of parallel tests have databases of their own and don't see each
// other's current database, even with queries interleaved.
func TestEnginesIsolated(t *testing.T) {
	for _, name := range []string{"a", "b", "c"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := Open(t)
			e.MustExec(t, "CREATE TABLE t (v String) ENGINE = Memory")
			var wg sync.WaitGroup
			for i := 0; i < 4; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for j := 0; j < 25; j++ {
						if err := e.Exec("INSERT INTO t VALUES ('" + name + "')"); err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			got := e.MustQuery(t, "SELECT v, count() FROM t GROUP BY v")
			if want := [][]string{{name, "100"}}; !reflect.DeepEqual(got, want) {
				t.Fatalf("rows %q, want %q", got, want)
			}
		})
	}
}

func TestInsertFromFile(t *testing.T) {
	e := Open(t)
	e.MustExec(t, "CREATE TABLE t (a UInt32, s String) ENGINE = Memory")
	// RowBinary: UInt32 little endian, String as varint length + bytes (with a NUL inside).
	data := []byte{7, 0, 0, 0, 3, 'a', 0, 'b'}
	path := filepath.Join(t.TempDir(), "batch.bin")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	e.MustExec(t, "INSERT INTO t FROM INFILE '"+path+"' FORMAT RowBinary")
	got := e.MustQuery(t, "SELECT a, s FROM t")
	if want := [][]string{{"7", "a\x00b"}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("rows %q, want %q", got, want)
	}
}

func TestParseTSV(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want [][]string
	}{
		{"", nil},
		{"\n", [][]string{{""}}},
		{"a\tb\n", [][]string{{"a", "b"}}},
		{"\\N\t\\\\x\\ty\\nz\n1\t2\n", [][]string{{`\N`, "\\x\ty\nz"}, {"1", "2"}}},
	} {
		if got := ParseTSV([]byte(tc.in)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseTSV(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// Without the library a test fails (not skips), saying how to install it.
// Run in a child process: the library is opened once per process.
func TestMissingLibraryMessage(t *testing.T) {
	if os.Getenv("CHDBTEST_CHILD") == "1" {
		Open(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestMissingLibraryMessage$", "-test.count=1")
	cmd.Env = append(os.Environ(), "CHDBTEST_CHILD=1", EnvLib+"=/nonexistent/libchdb.so")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("child passed without the library:\n%s", out)
	}
	for _, want := range []string{"--- FAIL: TestMissingLibraryMessage", "/nonexistent/libchdb.so", "bash deploy/local/chdb.sh install"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("child output lacks %q:\n%s", want, out)
		}
	}
	t.Setenv(EnvLib, "/x/libchdb.so")
	if got := LibPath(); got != "/x/libchdb.so" {
		t.Errorf("LibPath() = %q, want $%s", got, EnvLib)
	}
}

// The install script and LibPath's default must name the same version.
func TestVersionMatchesInstallScript(t *testing.T) {
	script, err := os.ReadFile("../../deploy/local/chdb.sh")
	if err != nil {
		t.Fatal(err)
	}
	if want := "VERSION=${CHDB_VERSION:-" + Version + "}"; !strings.Contains(string(script), want) {
		t.Fatalf("deploy/local/chdb.sh does not contain %q", want)
	}
}

func TestDB(t *testing.T) {
	db := Open(t).DB()
	ctx := context.Background()
	if err := db.Exec(ctx, "CREATE TABLE t (a UInt8, b String) ENGINE = Memory"); err != nil {
		t.Fatal(err)
	}
	if err := db.Exec(ctx, "INSERT INTO t VALUES (1, 'x'), (2, '')"); err != nil {
		t.Fatal(err)
	}
	cols, rows, err := db.Query(ctx, "SELECT a, b AS named FROM t ORDER BY a")
	if err != nil || !reflect.DeepEqual(cols, []string{"a", "named"}) || !reflect.DeepEqual(rows, [][]string{{"1", "x"}, {"2", ""}}) {
		t.Fatalf("Query = %q, %q, %v", cols, rows, err)
	}
	if _, err := db.QueryStrings(ctx, "SELECT ?", 1); err == nil {
		t.Fatal("arguments accepted")
	}
	if v, err := db.Scalar(ctx, "SELECT b FROM t WHERE a = 1"); err != nil || v != "x" {
		t.Fatalf("Scalar = %q, %v; want \"x\"", v, err)
	}
	if _, err := db.Scalar(ctx, "SELECT a FROM t"); err == nil {
		t.Fatal("Scalar of two rows gave no error")
	}
}

// The engine keeps its data in a directory of this process's, and a
// directory left by a process that is gone is removed.
func TestDataDir(t *testing.T) {
	Open(t)
	mine, _ := filepath.Glob(filepath.Join(os.TempDir(), fmt.Sprintf("%s%d-*", dirPrefix, os.Getpid())))
	if len(mine) != 1 {
		t.Fatalf("data directories of this process: %q, want one", mine)
	}
	// A pid that cannot be running (above the kernel's pid_max).
	stale := filepath.Join(os.TempDir(), dirPrefix+"2147483647-x")
	if err := os.MkdirAll(filepath.Join(stale, "store"), 0o755); err != nil {
		t.Fatal(err)
	}
	d, err := dataDir()
	if err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(d)
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale directory %s not removed (%v)", stale, err)
	}
	if _, err := os.Stat(mine[0]); err != nil {
		t.Errorf("this process's directory went: %v", err)
	}
}
