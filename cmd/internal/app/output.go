package app

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	json "github.com/goccy/go-json"

	"github.com/logpipe/logpipe/schemas"
	"github.com/logpipe/logpipe/warehouse"
)

// OutputFormats are the formats PrintRows writes.
var OutputFormats = []string{"table", "csv", "json"}

// managedTables are the tables and views logpipe's migrations create.
func managedTables() (map[string]bool, error) {
	ms, err := schemas.Migrations()
	if err != nil {
		return nil, err
	}
	out := map[string]bool{"schema_migrations": true}
	for _, m := range ms {
		for _, st := range m.Statements {
			if name := schemas.CreatedName(st); name != "" {
				out[name] = true
			}
		}
	}
	return out, nil
}

// TableRows is `logpipe tables` as rows, for the command and the demo.
func TableRows(ctx context.Context, w *warehouse.Warehouse, all bool, window time.Duration) ([]string, [][]string, error) {
	var managed map[string]bool
	if !all {
		var err error
		if managed, err = managedTables(); err != nil {
			return nil, nil, err
		}
		if w.Cluster != "" {
			// The per-server parts of the Distributed tables, as this
			// server holds them.
			for t := range managed {
				managed[t+schemas.LocalSuffix] = true
			}
		}
	}
	ts, err := w.Tables(ctx, managed, window)
	if err != nil {
		return nil, nil, err
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].Name < ts[j].Name })
	cols := []string{"table", "engine", "rows", "MiB", "partitions", "newest part", "reads", "last read", "readers"}
	var rows [][]string
	for _, t := range ts {
		mod, last := "", ""
		if !t.Modified.IsZero() {
			mod = t.Modified.Format(time.DateTime)
		}
		if !t.LastRead.IsZero() {
			last = t.LastRead.Format(time.DateTime)
		}
		rows = append(rows, []string{t.Name, t.Engine, fmt.Sprint(t.Rows), fmt.Sprintf("%.1f", float64(t.Bytes)/(1<<20)),
			fmt.Sprint(t.Partitions), mod, fmt.Sprint(t.Reads), last, strings.Join(t.Readers, ",")})
	}
	return cols, rows, nil
}

// PrintRows writes a result as an aligned table, CSV or JSON lines.
func PrintRows(w io.Writer, format string, cols []string, rows [][]string) error {
	switch format {
	case "table":
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, strings.Join(cols, "\t"))
		for _, r := range rows {
			cells := make([]string, len(r))
			for i, c := range r {
				cells[i] = cell(c)
			}
			fmt.Fprintln(tw, strings.Join(cells, "\t"))
		}
		if len(rows) == 0 {
			fmt.Fprintln(tw, "(no rows)")
		}
		return tw.Flush()
	case "csv":
		cw := csv.NewWriter(w)
		cw.Write(cols)
		cw.WriteAll(rows)
		return cw.Error()
	case "json":
		enc := json.NewEncoder(w)
		for _, r := range rows {
			m := make(map[string]string, len(cols))
			for i, c := range cols {
				m[c] = r[i]
			}
			if err := enc.Encode(m); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("unknown output format %q (table, csv, json)", format)
}

// cell keeps table cells on one line and readable.
func cell(s string) string {
	s = strings.NewReplacer("\n", " ", "\t", " ").Replace(s)
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}
