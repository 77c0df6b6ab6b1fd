// Package warehouse keeps logpipe's ClickHouse tables healthy: it drops
// partitions past their retention, reports which tables are read (from
// system.query_log), and retires unused tables safely (rename first,
// drop only after a grace period, with every step recorded).
package warehouse

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/logpipe/logpipe/chclient"
	"github.com/logpipe/logpipe/config"
	"github.com/logpipe/logpipe/schemas"
)

// Warehouse works on one database.
type Warehouse struct {
	conn *chclient.Conn
	sql  sqlDB // conn, for what runs on any engine (retention)
	db   string
	// Now is the clock (injectable for tests).
	Now func() time.Time
	// Cluster, when set, is the ClickHouse cluster the tables are spread
	// over (schemas.Target): retention then lists the partitions of each
	// table's TABLE_local parts on every shard and drops them ON CLUSTER
	// (a replicated table drops on all its replicas).
	Cluster string
}

// New returns a Warehouse for the connection's database.
func New(conn *chclient.Conn) *Warehouse {
	return &Warehouse{conn: conn, sql: conn, db: conn.Database(), Now: func() time.Time { return time.Now().UTC() }}
}

// ParseAge reads a retention or period in logpipe's one duration syntax
// (config.ParseDuration: "30d", "12h", "90m", "1d12h"); it must be
// positive.
func ParseAge(s string) (time.Duration, error) {
	d, err := config.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q is not a positive duration (30d, 12h, 90m, 1d12h)", s)
	}
	return d, nil
}

// Partition is one partition of a table past its retention.
type Partition struct {
	Table     string
	Partition string // as ClickHouse prints it: 2026-11-20 or 202611
	ID        string // partition_id: 20261120 or 202611
	Rows      uint64
	Bytes     uint64
	Newest    time.Time // the latest time the partition can hold
	Dropped   bool
	// TTL is set when the table has a TTL (the modern schema rendering):
	// the server drops the partition's parts itself (ttl_only_drop_parts),
	// so retention only reports it, never drops it.
	TTL bool
}

// Retention finds the partitions older than each table's retention and,
// with apply, drops them. Partition keys understood: a date
// (PARTITION BY toDate(time)) and a month (toYYYYMM(...)). Partitions of
// tables with a TTL are reported (Partition.TTL), not dropped: the server
// drops them (see SyncTTL for keeping the TTL in step with the rules).
func (w *Warehouse) Retention(ctx context.Context, rules map[string]time.Duration, apply bool) ([]Partition, error) {
	now := w.Now()
	var out []Partition
	tables := make([]string, 0, len(rules))
	for t := range rules {
		tables = append(tables, t)
	}
	sort.Strings(tables)
	for _, table := range tables {
		keep := rules[table]
		parts, local, on := "system.parts", table, ""
		if w.Cluster != "" {
			// One replica of every shard: rows and bytes are the
			// cluster's (not counting copies).
			parts, local, on = fmt.Sprintf("cluster(%s, system, parts)", chclient.String(w.Cluster)), table+schemas.LocalSuffix, " ON CLUSTER "+chclient.QuotedIdent(w.Cluster)
		}
		def, err := w.tableTTL(ctx, local)
		if err != nil {
			return out, fmt.Errorf("retention: %w", err)
		}
		rows, err := w.sql.QueryStrings(ctx, fmt.Sprintf(
			"SELECT partition, toString(sum(rows)), toString(sum(bytes_on_disk)), any(partition_id) FROM %s WHERE active AND database = %s AND table = %s GROUP BY partition ORDER BY partition",
			parts, chclient.String(w.db), chclient.String(local)))
		if err != nil {
			return out, fmt.Errorf("retention: parts of %s: %w", table, err)
		}
		for _, r := range rows {
			end, ok := partitionEnd(r[0])
			if !ok {
				return out, fmt.Errorf("retention: table %s: partition %s is neither a date nor a month (YYYYMM)", table, r[0])
			}
			if end.After(now.Add(-keep)) {
				continue
			}
			// Read as text: the same code runs on the embedded engine in tests.
			n, err := strconv.ParseUint(r[1], 10, 64)
			if err != nil {
				return out, fmt.Errorf("retention: rows of partition %s of %s: %w", r[0], table, err)
			}
			b, err := strconv.ParseUint(r[2], 10, 64)
			if err != nil {
				return out, fmt.Errorf("retention: bytes of partition %s of %s: %w", r[0], table, err)
			}
			p := Partition{Table: table, Partition: r[0], ID: r[3], Rows: n, Bytes: b, Newest: end.Add(-time.Second), TTL: def.ttl != ""}
			if apply && !p.TTL {
				if err := w.sql.Exec(ctx, fmt.Sprintf("ALTER TABLE %s.%s%s DROP PARTITION ID %s", chclient.QuotedIdent(w.db), chclient.QuotedIdent(local), on, chclient.String(r[3]))); err != nil {
					return out, fmt.Errorf("retention: drop partition %s of %s: %w", r[0], table, err)
				}
				p.Dropped = true
			}
			out = append(out, p)
		}
	}
	return out, nil
}

// partitionEnd is the first instant after everything a partition can
// hold.
func partitionEnd(p string) (time.Time, bool) {
	p = strings.Trim(p, "'")
	if t, err := time.Parse("2006-01-02", p); err == nil {
		return t.AddDate(0, 0, 1), true
	}
	if len(p) == 6 {
		if t, err := time.Parse("200601", p); err == nil {
			return t.AddDate(0, 1, 0), true
		}
	}
	return time.Time{}, false
}

// Run applies the retention rules every interval until ctx is done
// (for `logpipe run`), logging through report.
func (w *Warehouse) Run(ctx context.Context, rules map[string]time.Duration, interval time.Duration, report func([]Partition, error)) {
	for {
		if _, err := w.SyncTTL(ctx, rules, true); err != nil {
			report(nil, err)
		}
		report(w.Retention(ctx, rules, true))
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}

// Table is what is known of one table.
type Table struct {
	Name       string
	Engine     string
	Rows       uint64
	Bytes      uint64 // compressed, on disk
	Partitions int
	Modified   time.Time // newest data part written
	Usage
}

// Usage is the read evidence of a table from system.query_log.
type Usage struct {
	LastRead time.Time // zero: not read in the window
	Readers  []string  // distinct users
	Reads    uint64
}

func (u Usage) String() string {
	if u.Reads == 0 {
		return "no reads"
	}
	return fmt.Sprintf("%d reads, last %s, by %s", u.Reads, u.LastRead.Format(time.DateTime), strings.Join(u.Readers, ", "))
}

// Tables lists the tables of the database (only those in managed when it
// is not nil) with their size and the reads within window.
func (w *Warehouse) Tables(ctx context.Context, managed map[string]bool, window time.Duration) ([]Table, error) {
	w.flushLogs(ctx)
	rows, err := w.conn.Rows(ctx, fmt.Sprintf(`
SELECT t.name, t.engine, toUInt64(p.rows), toUInt64(p.bytes), toUInt64(p.partitions), p.modified
FROM (SELECT name, engine FROM system.tables WHERE database = %[1]s) AS t
ALL LEFT JOIN (
    SELECT table AS name, sum(rows) AS rows, sum(bytes_on_disk) AS bytes, uniqExact(partition) AS partitions, max(modification_time) AS modified
    FROM system.parts WHERE active AND database = %[1]s GROUP BY table
) AS p USING (name)
ORDER BY t.name`, chclient.String(w.db)))
	if err != nil {
		return nil, fmt.Errorf("tables: %w", err)
	}
	defer rows.Close()
	var all []Table
	for rows.Next() {
		var t Table
		var partitions uint64
		var modified time.Time
		if err := rows.Scan(&t.Name, &t.Engine, &t.Rows, &t.Bytes, &partitions, &modified); err != nil {
			return nil, fmt.Errorf("tables: %w", err)
		}
		t.Partitions = int(partitions)
		if modified.Unix() > 0 {
			t.Modified = modified.UTC()
		}
		all = append(all, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("tables: %w", err)
	}
	rows.Close()
	var out []Table
	for _, t := range all {
		if managed != nil && !managed[t.Name] {
			continue
		}
		if t.Usage, err = w.Usage(ctx, t.Name, window); err != nil {
			return out, err
		}
		out = append(out, t)
	}
	return out, nil
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Usage reads system.query_log for finished queries within window that
// name table (alone or as db.table), leaving out inserts, DDL and system
// statements. ClickHouse 18.x logs neither the tables a query read nor its
// current database, so a query naming a table of the same name in another
// database counts too: the evidence errs towards "in use", the safe side.
//
// On a cluster it counts, on every server, the queries that name the table
// or its local part (TABLE_local).
func (w *Warehouse) Usage(ctx context.Context, table string, window time.Duration) (Usage, error) {
	if !identRE.MatchString(table) {
		return Usage{}, fmt.Errorf("usage: %q is not a table name", table)
	}
	if w.Cluster == "" {
		return w.usageOn(ctx, w.conn, table, window)
	}
	var all Usage
	readers := map[string]bool{}
	err := w.conn.EachServer(ctx, func(ctx context.Context, c *chclient.Conn) error {
		for _, name := range []string{table, table + schemas.LocalSuffix} {
			u, err := w.usageOn(ctx, c, name, window)
			if err != nil {
				return err
			}
			all.Reads += u.Reads
			if u.LastRead.After(all.LastRead) {
				all.LastRead = u.LastRead
			}
			for _, r := range u.Readers {
				readers[r] = true
			}
		}
		return nil
	})
	for r := range readers {
		all.Readers = append(all.Readers, r)
	}
	sort.Strings(all.Readers)
	return all, err
}

func (w *Warehouse) usageOn(ctx context.Context, conn *chclient.Conn, table string, window time.Duration) (Usage, error) {
	since := w.Now().Add(-window)
	var u Usage
	var last time.Time
	err := conn.QueryRow(ctx, fmt.Sprintf(`
SELECT count(), max(event_time), groupUniqArray(user)
FROM system.query_log
WHERE toUInt8(type) = 2 AND event_time >= toDateTime(%d)
  AND NOT match(query, '(?is)^\\s*((/\\*.*?\\*/|--[^\\n]*\\n)\\s*)*(INSERT|CREATE|ALTER|DROP|RENAME|OPTIMIZE|SYSTEM|KILL|DETACH|ATTACH|TRUNCATE|SHOW|DESCRIBE|EXISTS)\\b')
  AND position(query, 'system.') = 0
  AND (match(query, %s) OR position(query, %s) > 0)`,
		since.Unix(), chclient.String(`\b`+table+`\b`), chclient.String(w.db+"."+table))).Scan(&u.Reads, &last, &u.Readers)
	if err != nil {
		if code, _ := chclient.Code(err); code == chclient.CodeUnknownTable {
			return Usage{}, fmt.Errorf("usage: system.query_log is not available (%v): enable query logging with log_queries=1 in the users' profile (users.xml) and read again", err)
		}
		return Usage{}, fmt.Errorf("usage of %s: %w", table, err)
	}
	if u.Reads > 0 {
		u.LastRead = last.UTC()
		sort.Strings(u.Readers)
	} else {
		u.Readers = nil
	}
	return u, nil
}

// flushLogs writes what the servers hold of the query log, which they
// otherwise do every few seconds, so that the latest reads count. Without
// the SYSTEM privilege the log is read as it stands.
func (w *Warehouse) flushLogs(ctx context.Context) {
	w.conn.EachServer(ctx, func(ctx context.Context, c *chclient.Conn) error {
		c.Exec(ctx, "SYSTEM FLUSH LOGS")
		return nil
	})
}

// QueryLogEnabled reports whether system.query_log exists and has rows.
func (w *Warehouse) QueryLogEnabled(ctx context.Context) bool {
	n, err := chclient.Value[uint64](ctx, w.conn, "SELECT count() FROM system.query_log")
	return err == nil && n > 0
}
