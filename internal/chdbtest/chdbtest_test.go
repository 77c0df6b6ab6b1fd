package chdbtest

import (
	"context"
	"os"
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
	e.MustExec(t, "CREATE TABLE t (a UInt8, s String, ts DateTime64(3, 'UTC')) ENGINE = MergeTree ORDER BY a TTL toDateTime(ts) + INTERVAL 1 DAY SETTINGS ttl_only_drop_parts = 1")
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

func TestMissingLibraryMessage(t *testing.T) {
	t.Setenv(EnvLib, "/nonexistent/libchdb.so")
	if got := LibPath(); got != "/nonexistent/libchdb.so" {
		t.Fatalf("LibPath() = %q, want $%s", got, EnvLib)
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
}
