package warehouse

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/logpipe/logpipe/chclient"
	"github.com/logpipe/logpipe/schemas"
)

// sqlDB is what retention needs of a connection (*chclient.Conn has it; tests
// give the embedded modern engine).
type sqlDB interface {
	Exec(ctx context.Context, query string, args ...any) error
	QueryStrings(ctx context.Context, query string, args ...any) ([][]string, error)
}

// tableDef is what retention reads of a table's definition.
type tableDef struct {
	ttl       string // TTL expression, "" for none
	partition string // the column PARTITION BY f(column) names, "" if none
}

var (
	engineTTL       = regexp.MustCompile(`(?s)\sTTL\s+(.*?)(?:\s+SETTINGS\s|$)`)
	enginePartition = regexp.MustCompile(`\bPARTITION BY\s+(?:[A-Za-z]\w*\()?([A-Za-z_]\w*)\)?(?:\s|$)`)
)

// tableTTL reads a table's TTL and partition column from system.tables
// (engine_full). Servers before TTL existed (18.16) have none.
func (w *Warehouse) tableTTL(ctx context.Context, table string) (tableDef, error) {
	rows, err := w.sql.QueryStrings(ctx, fmt.Sprintf("SELECT engine_full FROM system.tables WHERE database = %s AND name = %s", chclient.String(w.db), chclient.String(table)))
	if err != nil {
		return tableDef{}, fmt.Errorf("definition of %s: %w", table, err)
	}
	if len(rows) == 0 {
		return tableDef{}, nil
	}
	var d tableDef
	if m := engineTTL.FindStringSubmatch(rows[0][0]); m != nil {
		d.ttl = strings.TrimSpace(m[1])
	}
	if m := enginePartition.FindStringSubmatch(rows[0][0]); m != nil {
		d.partition = m[1]
	}
	return d, nil
}

// TTLChange is a table whose TTL differs from its retention rule.
type TTLChange struct {
	Table    string
	From, To string // TTL expressions
	Applied  bool
}

// SyncTTL compares the TTL of each table in rules that has one (the modern
// schema rendering puts the configured retention there at migrate time)
// with its rule and, with apply, sets it to the rule
// (ALTER TABLE ... MODIFY TTL), so a changed retention setting takes effect.
// Tables without a TTL are left to Retention's partition drops.
func (w *Warehouse) SyncTTL(ctx context.Context, rules map[string]time.Duration, apply bool) ([]TTLChange, error) {
	tables := make([]string, 0, len(rules))
	for t := range rules {
		tables = append(tables, t)
	}
	sort.Strings(tables)
	var out []TTLChange
	for _, table := range tables {
		local, on := table, ""
		if w.Cluster != "" {
			local, on = table+schemas.LocalSuffix, " ON CLUSTER "+chclient.QuotedIdent(w.Cluster)
		}
		def, err := w.tableTTL(ctx, local)
		if err != nil {
			return out, fmt.Errorf("retention: %w", err)
		}
		if def.ttl == "" || def.partition == "" {
			continue
		}
		if err := schemas.CheckTTL(rules[table]); err != nil {
			return out, fmt.Errorf("retention: table %s: %w", table, err)
		}
		want := schemas.TTLExpression(def.partition, rules[table])
		if strings.Join(strings.Fields(def.ttl), " ") == want {
			continue
		}
		c := TTLChange{Table: table, From: def.ttl, To: want}
		if apply {
			if err := w.sql.Exec(ctx, fmt.Sprintf("ALTER TABLE %s.%s%s MODIFY TTL %s", chclient.QuotedIdent(w.db), chclient.QuotedIdent(local), on, want)); err != nil {
				return out, fmt.Errorf("retention: set the TTL of %s: %w", table, err)
			}
			c.Applied = true
		}
		out = append(out, c)
	}
	return out, nil
}
