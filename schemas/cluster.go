package schemas

import (
	"fmt"
	"github.com/logpipe/logpipe/chclient"
	"regexp"
	"strings"
	"time"
)

// Target says where migrations are applied: one server (Cluster empty,
// the default) or every server of a ClickHouse cluster.
//
// On a cluster each table of a migration becomes two, created ON CLUSTER:
//
//   - NAME_local, the same columns with the Replicated form of the engine
//     (ReplicatedMergeTree, ReplicatedAggregatingMergeTree, ...), its
//     ZooKeeper path /clickhouse/tables/{shard}/DATABASE/NAME_local and
//     replica {replica} taken from each server's macros;
//   - NAME, a Distributed table over NAME_local on every shard: the name
//     analysts and logpipe itself read and write, so no query changes.
//
// Tables that carry Kafka coordinates are sharded by cityHash64(_topic,
// _partition), so every batch (one partition's records) lands whole on one
// shard, in one block; other tables by their ORDER BY key, so the rows a
// ReplacingMergeTree folds together meet on one shard. Materialized views
// are created on every server and read NAME_local into TARGET_local, so
// each shard aggregates what it stores; views read the Distributed names.
// Every name is qualified with the database, since ON CLUSTER statements
// run on other servers with no session database.
type Target struct {
	Cluster  string
	Database string
	// LocalWithoutComments drops column comments from the replicated
	// local tables (the Distributed tables keep them): ClickHouse before
	// 19 refuses a ReplicatedMergeTree with comments ("Table structure in
	// ZooKeeper is too different"). MigrateTarget sets it from the
	// server version.
	LocalWithoutComments bool
	// Server is the server's version; from ModernSchema on, statements
	// get the modern rendering (modern.go). MigrateTarget reads it from
	// the server when it is zero.
	Server ServerVersion
	// Retention is how long rows of each table are kept (config
	// retention.tables): the modern rendering turns it into TTL.
	Retention map[string]time.Duration
}

// OnCluster reports whether t is a cluster.
func (t Target) OnCluster() bool { return t.Cluster != "" }

// LocalSuffix is appended to a table's name for its per-server part on a
// cluster.
const LocalSuffix = "_local"

var (
	leadComments = regexp.MustCompile(`^(?:\s*--[^\n]*\n)*\s*`)
	createTable  = regexp.MustCompile(`(?is)^CREATE\s+TABLE\s+IF\s+NOT\s+EXISTS\s+([A-Za-z_]\w*)\s*(.*)$`)
	createMV     = regexp.MustCompile(`(?is)^CREATE\s+MATERIALIZED\s+VIEW\s+IF\s+NOT\s+EXISTS\s+([A-Za-z_]\w*)\s+TO\s+([A-Za-z_]\w*)\s+AS\s+(.*)$`)
	createView   = regexp.MustCompile(`(?is)^CREATE\s+VIEW\s+IF\s+NOT\s+EXISTS\s+([A-Za-z_]\w*)\s+AS\s+(.*)$`)
	alterTable   = regexp.MustCompile(`(?is)^ALTER\s+TABLE\s+([A-Za-z_]\w*)\s+(.*)$`)
	alterColumn  = regexp.MustCompile(`(?is)^(ADD|DROP|MODIFY|COMMENT)\s+COLUMN\b`)
	nullEngine   = regexp.MustCompile(`(?is)\bENGINE\s*=\s*Null\b(?:\s*\(\s*\))?\s*$`)
	engineClause = regexp.MustCompile(`(?is)\bENGINE\s*=\s*([A-Za-z]*MergeTree)\s*\(([^)]*)\)`)
	orderBy      = regexp.MustCompile(`(?is)\bORDER\s+BY\s+(.+?)\s*(?:\bSETTINGS\b|\bTTL\b|$)`)
	tableRef     = regexp.MustCompile(`(?i)\b(FROM|JOIN)(\s+)([A-Za-z_]\w*)\b(\s*\()?`)
	kafkaColumns = regexp.MustCompile(`(?m)^\s*_partition\s`)
	// columnComment matches COMMENT 'text' (with \' and '' escapes) in a
	// column list.
	columnComment = regexp.MustCompile(`\s+COMMENT\s+'(?:[^'\\]|\\.|'')*'`)
)

// Render returns the statements that apply one statement of a migration to
// t. managed names every table and view the migrations create (their
// references inside views are qualified with the database, and inside
// materialized views pointed at the local tables). On one server the
// statement is returned unchanged.
func (t Target) Render(statement string, managed map[string]Kind) ([]string, error) {
	return t.render(statement, "", managed)
}

// render is Render for statement key ("VERSION/INDEX", see
// modernOverrides; "" for none).
func (t Target) render(statement, key string, managed map[string]Kind) ([]string, error) {
	if t.Modern() {
		var err error
		if statement, err = modernize(statement, key, t.Retention); err != nil {
			return nil, err
		}
	}
	if !t.OnCluster() {
		return []string{statement}, nil
	}
	if t.Database == "" {
		return nil, fmt.Errorf("rendering for cluster %s: no database", t.Cluster)
	}
	body := strings.TrimSpace(leadComments.ReplaceAllString(statement, ""))
	db, on := chclient.Ident(t.Database), " ON CLUSTER "+chclient.Ident(t.Cluster)
	switch {
	case createTable.MatchString(body):
		m := createTable.FindStringSubmatch(body)
		name, rest := m[1], m[2]
		eng := engineClause.FindStringSubmatchIndex(rest)
		if eng == nil && nullEngine.MatchString(rest) {
			return t.renderNull(name, rest)
		}
		if eng == nil {
			return nil, fmt.Errorf("table %s: only MergeTree-family engines can be replicated", name)
		}
		engine, args := rest[eng[2]:eng[3]], strings.TrimSpace(rest[eng[4]:eng[5]])
		if strings.HasPrefix(engine, "Replicated") {
			return nil, fmt.Errorf("table %s: engine is already %s; migrations name the single-server engine", name, engine)
		}
		local := name + LocalSuffix
		repl := fmt.Sprintf("ENGINE = Replicated%s('/clickhouse/tables/{shard}/%s/%s', '{replica}'", engine, t.Database, local)
		if args != "" {
			repl += ", " + args
		}
		repl += ")"
		columns := strings.TrimSpace(rest[:eng[0]])
		if t.Modern() {
			columns = distributedColumns(columns)
		}
		rest = rest[:eng[0]] + repl + rest[eng[1]:]
		if t.LocalWithoutComments {
			rest = columnComment.ReplaceAllString(rest, "")
		}
		key, err := shardingKey(name, m[2])
		if err != nil {
			return nil, err
		}
		return []string{
			fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s%s\n%s", db, chclient.Ident(local), on, rest),
			fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s%s\n%s\nENGINE = Distributed(%s, %s, %s, %s)",
				db, chclient.Ident(name), on, columns, chclient.Ident(t.Cluster), db, chclient.Ident(local), key),
		}, nil
	case createMV.MatchString(body):
		m := createMV.FindStringSubmatch(body)
		if managed[m[2]] != KindTable {
			return nil, fmt.Errorf("materialized view %s: target %s is not a table the migrations create", m[1], m[2])
		}
		return []string{fmt.Sprintf("CREATE MATERIALIZED VIEW IF NOT EXISTS %s.%s%s TO %s.%s AS\n%s",
			db, chclient.Ident(m[1]), on, db, chclient.Ident(m[2]+LocalSuffix), t.qualify(m[3], managed, true))}, nil
	case createView.MatchString(body):
		m := createView.FindStringSubmatch(body)
		return []string{fmt.Sprintf("CREATE VIEW IF NOT EXISTS %s.%s%s AS\n%s",
			db, chclient.Ident(m[1]), on, t.qualify(m[2], managed, false))}, nil
	case alterTable.MatchString(body):
		m := alterTable.FindStringSubmatch(body)
		name, rest := m[1], m[2]
		if managed[name] != KindTable {
			return nil, fmt.Errorf("ALTER TABLE %s: not a table the migrations create", name)
		}
		if !alterColumn.MatchString(rest) {
			return nil, fmt.Errorf("ALTER TABLE %s: only ADD, DROP, MODIFY and COMMENT COLUMN can be rendered for a cluster", name)
		}
		// The local tables first: a Distributed table must not name a
		// column its shards lack. It stores nothing: no codecs.
		dist := rest
		if t.Modern() {
			dist = codecClause.ReplaceAllString(rest, "")
		}
		return []string{
			fmt.Sprintf("ALTER TABLE %s.%s%s %s", db, chclient.Ident(name+LocalSuffix), on, rest),
			fmt.Sprintf("ALTER TABLE %s.%s%s %s", db, chclient.Ident(name), on, dist),
		}, nil
	}
	first, _, _ := strings.Cut(body, "\n")
	return nil, fmt.Errorf("cannot render for a cluster: %q (CREATE TABLE, CREATE [MATERIALIZED] VIEW and ALTER TABLE ... COLUMN can be)", first)
}

// renderNull renders a table of engine Null (an entry table whose
// materialized views store the rows elsewhere, such as the fence entry
// tables of 0019_fences): NAME_local, engine Null, on every server, and
// NAME, a Distributed table over them sharded like the tables the views
// write into, so that the rows reach the views of the right shard.
func (t Target) renderNull(name, rest string) ([]string, error) {
	db, on := chclient.Ident(t.Database), " ON CLUSTER "+chclient.Ident(t.Cluster)
	columns := strings.TrimSpace(rest[:nullEngine.FindStringIndex(rest)[0]])
	key, err := shardingKey(name, rest)
	if err != nil {
		return nil, err
	}
	local := rest
	if t.LocalWithoutComments {
		local = columnComment.ReplaceAllString(local, "")
	}
	return []string{
		fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s%s\n%s", db, chclient.Ident(name+LocalSuffix), on, local),
		fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s%s\n%s\nENGINE = Distributed(%s, %s, %s, %s)",
			db, chclient.Ident(name), on, columns, chclient.Ident(t.Cluster), db, chclient.Ident(name+LocalSuffix), key),
	}, nil
}

// shardingKey picks the Distributed sharding key of a table from its
// definition (see Target).
func shardingKey(name, def string) (string, error) {
	if kafkaColumns.MatchString(def) {
		return "cityHash64(_topic, _partition)", nil
	}
	m := orderBy.FindStringSubmatch(def)
	if m == nil {
		return "", fmt.Errorf("table %s: no ORDER BY to shard by", name)
	}
	key := strings.TrimSpace(m[1])
	if strings.HasPrefix(key, "(") && strings.HasSuffix(key, ")") {
		key = strings.TrimSpace(key[1 : len(key)-1])
	}
	return "cityHash64(" + key + ")", nil
}

// qualify prefixes the managed tables and views a query reads with the
// database, pointing tables at their local part when local is set.
func (t Target) qualify(query string, managed map[string]Kind, local bool) string {
	db := chclient.Ident(t.Database)
	return tableRef.ReplaceAllStringFunc(query, func(s string) string {
		m := tableRef.FindStringSubmatch(s)
		kind, ok := managed[m[3]]
		if !ok || m[4] != "" { // not ours, or a table function
			return s
		}
		name := m[3]
		if local && kind == KindTable {
			name += LocalSuffix
		}
		return m[1] + m[2] + db + "." + chclient.Ident(name)
	})
}

// Kind is what a migration statement creates.
type Kind int

// Kinds of managed objects.
const (
	KindNone Kind = iota
	KindTable
	KindView
)

var createdKind = regexp.MustCompile(`(?is)^CREATE\s+(TABLE|VIEW|MATERIALIZED\s+VIEW)\s`)

// Managed maps the name of every table and view ms create to its kind
// (materialized views count as views), schema_migrations included.
func Managed(ms []Migration) map[string]Kind {
	out := map[string]Kind{"schema_migrations": KindTable}
	for _, m := range ms {
		for _, st := range m.Statements {
			name := CreatedName(st)
			if name == "" {
				continue
			}
			k := KindView
			if km := createdKind.FindStringSubmatch(strings.TrimSpace(leadComments.ReplaceAllString(st, ""))); km != nil && strings.EqualFold(km[1], "TABLE") {
				k = KindTable
			}
			out[name] = k
		}
	}
	return out
}

var codecClause = regexp.MustCompile(`(?i)\s+CODEC\s*\((?:[^()]|\([^()]*\))*\)`)

// distributedColumns keeps the columns of a modern column list for its
// Distributed table, which stores nothing: no codecs, no skip indexes.
func distributedColumns(columns string) string {
	if !strings.HasPrefix(columns, "(") {
		return columns
	}
	end := matchParen(columns, 0)
	if end < 0 {
		return columns
	}
	var keep []string
	for _, it := range splitTopLevel(columns[1:end]) {
		if _, _, _, ok := splitColumn(it); !ok {
			continue
		}
		keep = append(keep, codecClause.ReplaceAllString(it, ""))
	}
	out := strings.Join(keep, ",")
	if !strings.HasSuffix(out, "\n") {
		out += "\n"
	}
	return "(" + out + ")" + columns[end+1:]
}
