// Package schemas holds logpipe's ClickHouse schema: numbered migrations
// embedded in the binary, the analysts' query catalogue, and the code that
// applies migrations.
//
// A migration is migrations/NNNN_name.sql: statements separated by a line
// holding only ";". Migrations are applied in order, once each; applied
// ones are recorded in schema_migrations with a checksum, so running
// migrate twice is safe and an edited, already-applied migration is
// reported instead of silently skipped.
package schemas

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"github.com/logpipe/logpipe/chclient"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migration is one numbered schema change.
type Migration struct {
	Version    int
	Name       string
	Statements []string
	Checksum   string
	// Retire lists tables this migration replaces ("-- retire: name"
	// lines): they are scheduled for retirement in table_retirements
	// instead of being dropped or left behind unnoticed.
	Retire []string
}

var retireLine = regexp.MustCompile(`(?m)^\s*--\s*retire:\s*([A-Za-z_][A-Za-z0-9_]*)\s*$`)

// Migrations returns the embedded migrations in order.
func Migrations() ([]Migration, error) {
	return loadMigrations(migrationFiles, "migrations")
}

func loadMigrations(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, err
	}
	var ms []Migration
	seen := map[int]string{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		base := strings.TrimSuffix(e.Name(), ".sql")
		num, name, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must be NNNN_name.sql", e.Name())
		}
		if prev, dup := seen[v]; dup {
			return nil, fmt.Errorf("migrations %s and %s share version %d", prev, e.Name(), v)
		}
		seen[v] = e.Name()
		b, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(b)
		m := Migration{
			Version:    v,
			Name:       name,
			Statements: SplitStatements(string(b)),
			Checksum:   hex.EncodeToString(sum[:8]),
		}
		for _, r := range retireLine.FindAllStringSubmatch(string(b), -1) {
			m.Retire = append(m.Retire, r[1])
		}
		ms = append(ms, m)
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	return ms, nil
}

// SplitStatements splits SQL text at lines holding only ";" and drops
// statements that are empty or only comments.
func SplitStatements(sql string) []string {
	var out []string
	var cur strings.Builder
	flush := func() {
		s := strings.TrimSpace(cur.String())
		cur.Reset()
		if s == "" || onlyComments(s) {
			return
		}
		out = append(out, s)
	}
	for _, line := range strings.Split(sql, "\n") {
		if strings.TrimSpace(line) == ";" {
			flush()
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
	}
	flush()
	return out
}

func onlyComments(s string) bool {
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "--") {
			return false
		}
	}
	return true
}

// Execer runs one DDL statement. *chclient.Conn satisfies it.
type Execer interface {
	Exec(ctx context.Context, query string, args ...any) error
	QueryStrings(ctx context.Context, query string, args ...any) ([][]string, error)
}

// Applied is one migration already recorded on the server.
type Applied struct {
	Version  int
	Name     string
	Checksum string
}

const migrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations
(
    version    UInt32   COMMENT 'Migration number',
    name       String   COMMENT 'Migration name',
    checksum   String   COMMENT 'First 8 bytes of the SHA-256 of the migration file, hex',
    applied_at DateTime COMMENT 'When it was applied',
    rendering  String   COMMENT 'Schema rendering it was applied with: legacy (18.16 forms) or modern (DateTime64, TTL, codecs, skip indexes)'
)
ENGINE = MergeTree()
ORDER BY version`

// Migrate applies the pending migrations and returns the ones it applied.
// It fails, applying nothing, if an applied migration's checksum differs
// from the embedded one.
func Migrate(ctx context.Context, db Execer) ([]Migration, error) {
	return MigrateTarget(ctx, db, Target{})
}

// MigrateTarget is Migrate for a target that may be a cluster (see
// Target). On a cluster, db must insert into Distributed tables
// synchronously (insert_distributed_sync = 1), so that what it records is
// readable at once.
func MigrateTarget(ctx context.Context, db Execer, t Target) ([]Migration, error) {
	ms, err := Migrations()
	if err != nil {
		return nil, err
	}
	if t.Server.IsZero() {
		if t.Server, err = DetectServerVersion(ctx, db); err != nil {
			return nil, err
		}
	}
	if t.OnCluster() {
		t.LocalWithoutComments = !t.Server.AtLeast(ServerVersion{19, 1})
	}
	return apply(ctx, db, ms, t)
}

func apply(ctx context.Context, db Execer, ms []Migration, t Target) ([]Migration, error) {
	managed := Managed(ms)
	// Render everything first: a migration that cannot be rendered for
	// the target fails before anything is applied.
	rendered := make([][][]string, len(ms))
	for i, m := range ms {
		for j, st := range m.Statements {
			r, err := t.render(st, fmt.Sprintf("%d/%d", m.Version, j+1), managed)
			if err != nil {
				return nil, fmt.Errorf("migration %04d_%s statement %d: %w", m.Version, m.Name, j+1, err)
			}
			rendered[i] = append(rendered[i], r)
		}
	}
	create, err := t.Render(migrationsTable, managed)
	if err != nil {
		return nil, err
	}
	// schema_migrations is created only when it cannot be read: on a
	// cluster, ON CLUSTER DDL waits for every server, and a replica that
	// is down must not stop logpipe run -migrate when nothing is pending.
	done, err := AppliedMigrations(ctx, db)
	if err != nil {
		for _, st := range create {
			if err := db.Exec(ctx, st); err != nil {
				return nil, fmt.Errorf("create schema_migrations: %w", err)
			}
		}
		if done, err = AppliedMigrations(ctx, db); err != nil {
			return nil, err
		}
	}
	byVersion := map[int]Applied{}
	for _, a := range done {
		byVersion[a.Version] = a
	}
	for _, m := range ms {
		if a, ok := byVersion[m.Version]; ok && a.Checksum != m.Checksum {
			return nil, fmt.Errorf("migration %04d_%s was changed after it was applied (checksum %s on the server, %s here): add a new migration instead", m.Version, m.Name, a.Checksum, m.Checksum)
		}
	}
	var applied []Migration
	recorded := false // schema_migrations has the rendering column
	for k, m := range ms {
		if _, ok := byVersion[m.Version]; ok {
			continue
		}
		if !recorded {
			if err := addRenderingColumn(ctx, db, t, managed); err != nil {
				return applied, err
			}
			recorded = true
		}
		for i, sts := range rendered[k] {
			for _, st := range sts {
				if err := db.Exec(ctx, st); err != nil {
					return applied, fmt.Errorf("migration %04d_%s statement %d: %w", m.Version, m.Name, i+1, err)
				}
			}
		}
		// INSERT ... SELECT: the server needs no data block from the client.
		rec := fmt.Sprintf("INSERT INTO schema_migrations (version, name, checksum, applied_at, rendering) SELECT %d, %s, %s, now(), %s",
			m.Version, chclient.String(m.Name), chclient.String(m.Checksum), chclient.String(t.Rendering()))
		if err := db.Exec(ctx, rec); err != nil {
			return applied, fmt.Errorf("record migration %04d_%s: %w", m.Version, m.Name, err)
		}
		applied = append(applied, m)
	}
	// Tables replaced by what was applied are scheduled for retirement
	// (logpipe retire shows them; they are renamed only after the quiet
	// period without reads).
	for _, m := range applied {
		for _, t := range m.Retire {
			rec := fmt.Sprintf("INSERT INTO table_retirements (time, table_name, retired_name, action, by, reason, evidence) SELECT now(), %s, '', 'scheduled', 'migration', %s, ''",
				chclient.String(t), chclient.String(fmt.Sprintf("replaced by migration %04d_%s", m.Version, m.Name)))
			if err := db.Exec(ctx, rec); err != nil {
				return applied, fmt.Errorf("schedule retirement of %s (migration %04d_%s): %w", t, m.Version, m.Name, err)
			}
		}
	}
	return applied, nil
}

// Apply applies ms like Migrate applies the embedded migrations (for
// tests and tools that bring their own).
func Apply(ctx context.Context, db Execer, ms []Migration) ([]Migration, error) {
	return apply(ctx, db, ms, Target{})
}

// LoadMigrations reads migrations from a directory of fsys.
func LoadMigrations(fsys fs.FS, dir string) ([]Migration, error) {
	return loadMigrations(fsys, dir)
}

// AppliedMigrations lists the migrations recorded on the server.
func AppliedMigrations(ctx context.Context, db Execer) ([]Applied, error) {
	rows, err := db.QueryStrings(ctx, "SELECT toString(version), name, checksum FROM schema_migrations ORDER BY version")
	if err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	out := make([]Applied, 0, len(rows))
	for _, r := range rows {
		v, err := strconv.Atoi(r[0])
		if err != nil {
			return nil, fmt.Errorf("read schema_migrations: version %q: %w", r[0], err)
		}
		out = append(out, Applied{Version: v, Name: r[1], Checksum: r[2]})
	}
	return out, nil
}

var createdName = regexp.MustCompile(`(?is)^\s*(?:--[^\n]*\n\s*)*CREATE\s+(?:MATERIALIZED\s+)?(?:TABLE|VIEW)\s+(?:IF\s+NOT\s+EXISTS\s+)?([A-Za-z_][A-Za-z0-9_]*)`)

// CreatedName returns the name of the table or view a CREATE statement
// makes, or "".
func CreatedName(statement string) string {
	if m := createdName.FindStringSubmatch(statement); m != nil {
		return m[1]
	}
	return ""
}

// renderingColumn is added to a schema_migrations created before it.
const renderingColumn = `ALTER TABLE schema_migrations ADD COLUMN rendering String COMMENT 'Schema rendering it was applied with: legacy (18.16 forms) or modern (DateTime64, TTL, codecs, skip indexes)'`

// addRenderingColumn adds schema_migrations.rendering when the table
// predates it.
func addRenderingColumn(ctx context.Context, db Execer, t Target, managed map[string]Kind) error {
	rows, err := db.QueryStrings(ctx, "SELECT toString(count()) FROM system.columns WHERE database = currentDatabase() AND table = 'schema_migrations' AND name = 'rendering'")
	if err != nil {
		return fmt.Errorf("schema_migrations: look for the rendering column: %w", err)
	}
	if len(rows) == 1 && rows[0][0] != "0" {
		return nil
	}
	sts, err := Target{Cluster: t.Cluster, Database: t.Database}.Render(renderingColumn, managed)
	if err != nil {
		return err
	}
	for _, st := range sts {
		if err := db.Exec(ctx, st); err != nil {
			return fmt.Errorf("schema_migrations: add the rendering column: %w", err)
		}
	}
	return nil
}
