package warehouse

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/logpipe/logpipe/chclient"
	"github.com/logpipe/logpipe/schemas"
)

const retiredMark = "__retired_"

// RetiredName is the name a table gets while retired.
func RetiredName(table string, at time.Time) string {
	return table + retiredMark + at.UTC().Format("20060102")
}

// RefusedError says a table was read within the quiet period.
type RefusedError struct {
	Table string
	Quiet time.Duration
	Usage Usage
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("retire %s: refused, it was read within the last %s: %s", e.Table, e.Quiet, e.Usage)
}

// Retire renames table to its retired name when nothing read it within
// quiet, and records the step with its evidence. It returns the retired
// name.
func (w *Warehouse) Retire(ctx context.Context, table string, quiet time.Duration, by, reason string) (string, error) {
	if strings.Contains(table, retiredMark) {
		return "", fmt.Errorf("retire %s: already retired", table)
	}
	deps, err := w.Dependents(ctx, table)
	if err != nil {
		return "", err
	}
	if w.Cluster != "" {
		local, err := w.Dependents(ctx, table+schemas.LocalSuffix)
		if err != nil {
			return "", err
		}
		deps = append(deps, local...)
	}
	if len(deps) > 0 {
		// A renamed table breaks the views on it, and a materialized
		// view whose target is gone fails every INSERT into its source.
		return "", fmt.Errorf("retire %s: refused, views depend on it: %s (retire or drop them first)", table, strings.Join(deps, ", "))
	}
	w.flushLogs(ctx)
	u, err := w.Usage(ctx, table, quiet)
	if err != nil {
		return "", err
	}
	if u.Reads > 0 {
		return "", &RefusedError{Table: table, Quiet: quiet, Usage: u}
	}
	now := w.Now()
	name := RetiredName(table, now)
	if err := w.rename(ctx, table, name); err != nil {
		return "", fmt.Errorf("retire %s: %w", table, err)
	}
	evidence := fmt.Sprintf("no reads in the %s before %s", quiet, now.Format(time.DateTime))
	return name, w.record(ctx, now, table, name, "rename", by, reason, evidence)
}

// Dependents lists the views and materialized views of the database that
// read table or write into it.
func (w *Warehouse) Dependents(ctx context.Context, table string) ([]string, error) {
	out, err := chclient.Values[string](ctx, w.conn, fmt.Sprintf(`
SELECT DISTINCT name FROM (
    SELECT arrayJoin(dependencies_table) AS name FROM system.tables WHERE database = %[1]s AND name = %[2]s
    UNION ALL
    SELECT name FROM system.tables
    WHERE database = %[1]s AND engine IN ('View', 'MaterializedView') AND name != %[2]s
      AND match(create_table_query, %[3]s)
) ORDER BY name`, chclient.String(w.db), chclient.String(table), chclient.String(`(^|[^A-Za-z0-9_.`+"`"+`])(`+regexp.QuoteMeta(w.db)+`\.)?`+"`?"+regexp.QuoteMeta(table)+"`?"+`([^A-Za-z0-9_]|$)`)))
	if err != nil {
		return nil, fmt.Errorf("views on %s: %w", table, err)
	}
	if out == nil {
		out = []string{}
	}
	return out, nil
}

// Restore renames a retired table back to its name.
func (w *Warehouse) Restore(ctx context.Context, retired, by string) (string, error) {
	table, _, ok := strings.Cut(retired, retiredMark)
	if !ok || table == "" {
		return "", fmt.Errorf("restore %s: not a retired table name (<table>%sYYYYMMDD)", retired, retiredMark)
	}
	if err := w.rename(ctx, retired, table); err != nil {
		return "", fmt.Errorf("restore %s: %w", retired, err)
	}
	return table, w.record(ctx, w.Now(), table, retired, "restore", by, "", "")
}

// localName is the name of the local part of a table (or of a retired
// table) on a cluster: t -> t_local, t__retired_D -> t_local__retired_D.
func localName(name string) string {
	base, date, retired := strings.Cut(name, retiredMark)
	if !retired {
		return name + schemas.LocalSuffix
	}
	return base + schemas.LocalSuffix + retiredMark + date
}

// rename renames a table, and on a cluster its local part too, on every
// server.
func (w *Warehouse) rename(ctx context.Context, from, to string) error {
	if w.Cluster == "" {
		return w.conn.Exec(ctx, fmt.Sprintf("RENAME TABLE %s.%s TO %s.%s", chclient.QuotedIdent(w.db), chclient.QuotedIdent(from), chclient.QuotedIdent(w.db), chclient.QuotedIdent(to)))
	}
	return w.conn.Exec(ctx, fmt.Sprintf("RENAME TABLE %[1]s.%[2]s TO %[1]s.%[3]s, %[1]s.%[4]s TO %[1]s.%[5]s ON CLUSTER %[6]s",
		chclient.QuotedIdent(w.db), chclient.QuotedIdent(from), chclient.QuotedIdent(to), chclient.QuotedIdent(localName(from)), chclient.QuotedIdent(localName(to)), chclient.QuotedIdent(w.Cluster)))
}

// drop drops a retired table, and on a cluster its local part too, on
// every server.
func (w *Warehouse) drop(ctx context.Context, name string) error {
	if w.Cluster == "" {
		return w.conn.Exec(ctx, fmt.Sprintf("DROP TABLE %s.%s", chclient.QuotedIdent(w.db), chclient.QuotedIdent(name)))
	}
	for _, n := range []string{name, localName(name)} {
		if err := w.conn.Exec(ctx, fmt.Sprintf("DROP TABLE IF EXISTS %s.%s ON CLUSTER %s", chclient.QuotedIdent(w.db), chclient.QuotedIdent(n), chclient.QuotedIdent(w.Cluster))); err != nil {
			return err
		}
	}
	return nil
}

// Retired is a table waiting out its grace period.
type Retired struct {
	Table, RetiredName string
	Since              time.Time
	Droppable          bool // retired longer ago than the grace period
	Dropped            bool
}

// DropRetired lists retired tables and, with apply, drops those retired
// longer ago than grace. Tables retired more recently are kept.
func (w *Warehouse) DropRetired(ctx context.Context, grace time.Duration, by string, apply bool) ([]Retired, error) {
	rows, err := w.conn.Rows(ctx, fmt.Sprintf(`
SELECT t.name, r.since
FROM (SELECT name FROM system.tables WHERE database = %[1]s AND position(name, '%[2]s') > 0) AS t
ALL LEFT JOIN (
    SELECT retired_name AS name, max(time) AS since FROM %[3]s.table_retirements WHERE action = 'rename' GROUP BY retired_name
) AS r USING (name)
ORDER BY t.name`, chclient.String(w.db), retiredMark, chclient.QuotedIdent(w.db)))
	if err != nil {
		return nil, fmt.Errorf("retired tables: %w", err)
	}
	type retiredRow struct {
		name  string
		since time.Time
	}
	var found []retiredRow
	defer rows.Close()
	for rows.Next() {
		var r retiredRow
		if err := rows.Scan(&r.name, &r.since); err != nil {
			return nil, fmt.Errorf("retired tables: %w", err)
		}
		found = append(found, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("retired tables: %w", err)
	}
	rows.Close()
	now := w.Now()
	var out []Retired
	for _, r := range found {
		table, _, _ := strings.Cut(r.name, retiredMark)
		if w.Cluster != "" && strings.HasSuffix(table, schemas.LocalSuffix) {
			continue // goes with its Distributed table
		}
		since := r.since.UTC()
		if since.Unix() <= 0 {
			// Renamed by hand, not through logpipe: never dropped automatically.
			out = append(out, Retired{Table: table, RetiredName: r.name})
			continue
		}
		rt := Retired{Table: table, RetiredName: r.name, Since: since, Droppable: !since.After(now.Add(-grace))}
		if rt.Droppable && apply {
			if err := w.drop(ctx, r.name); err != nil {
				return out, fmt.Errorf("drop %s: %w", r.name, err)
			}
			if err := w.record(ctx, now, table, r.name, "drop", by, fmt.Sprintf("retired %s ago, grace %s", now.Sub(since).Round(time.Hour), grace), ""); err != nil {
				return out, err
			}
			rt.Dropped = true
		}
		out = append(out, rt)
	}
	return out, nil
}

func (w *Warehouse) record(ctx context.Context, at time.Time, table, retired, action, by, reason, evidence string) error {
	err := w.conn.Exec(ctx, fmt.Sprintf(
		"INSERT INTO %s.table_retirements (time, table_name, retired_name, action, by, reason, evidence) SELECT toDateTime(%d), %s, %s, %s, %s, %s, %s",
		chclient.QuotedIdent(w.db), at.Unix(), chclient.String(table), chclient.String(retired), chclient.String(action), chclient.String(by), chclient.String(reason), chclient.String(evidence)))
	if err != nil {
		return fmt.Errorf("record %s of %s: %w", action, table, err)
	}
	return nil
}

// Scheduled lists tables that migrations replaced ("-- retire: name") and
// that are neither retired nor dropped yet, with their current usage.
func (w *Warehouse) Scheduled(ctx context.Context, quiet time.Duration) ([]Table, error) {
	w.flushLogs(ctx)
	names, err := chclient.Values[string](ctx, w.conn, fmt.Sprintf(`
SELECT table_name FROM %s.table_retirements
GROUP BY table_name
HAVING argMax(action, time) = 'scheduled'
ORDER BY table_name`, chclient.QuotedIdent(w.db)))
	if err != nil {
		return nil, fmt.Errorf("scheduled retirements: %w", err)
	}
	var out []Table
	for _, name := range names {
		u, err := w.Usage(ctx, name, quiet)
		if err != nil {
			return out, err
		}
		out = append(out, Table{Name: name, Usage: u})
	}
	return out, nil
}
