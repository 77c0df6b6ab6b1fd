package schemas

import (
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
)

// The modern rendering of the schema.
//
// Migrations are written once, in the forms ClickHouse 18.16 (the oldest
// supported server) accepts, and their text is what schema_migrations
// checksums. For a server of ModernSchema or newer, Target.Render rewrites
// each statement on the way out (modernize), systematically:
//
//   - event times: a DateTime column named `time` in a table holding Kafka
//     coordinates (a `_partition` column: the tables the sink writes
//     events to) becomes DateTime64(3, 'UTC'), keeping milliseconds;
//   - column codecs by type and name (modernCodec): Delta + ZSTD for times
//     (DateTime, DateTime64, UInt64 *_ms), DoubleDelta + ZSTD for the Kafka
//     offset counter, ZSTD for strings and arrays; none for LowCardinality,
//     Nullable, aggregate states and small numbers;
//   - skip indexes listed in modernIndexes (bloom filters on the columns
//     incident queries filter by);
//   - retention: when Target.Retention names the table, TTL on the
//     table's partition column (PARTITION BY f(col)) replaces logpipe's
//     partition-dropping job, and every MergeTree table gets
//     SETTINGS ttl_only_drop_parts = 1 so TTL drops whole parts (as the job
//     dropped whole partitions) instead of rewriting them;
//   - ALTER TABLE ... ADD/MODIFY COLUMN gets the same codecs, so new
//     columns match the old ones.
//
// Views and materialized views are sent unchanged. A new migration needs
// nothing more when the rules above suit it: TestModernRendering (and the
// chdb tier, which applies every migration as rendered here) proves the
// result on a modern engine. A column needing another codec or type goes in
// modernCodec (by name and type); a new skip index in modernIndexes. If a
// statement cannot be expressed by rules, give it a per-migration override
// in modernOverrides (key "NNNN/statement index"): the full modern text
// sent instead of the rewritten one.

// modernIndexes are skip indexes added to tables in the modern rendering,
// by table: bloom filters on the columns the incident queries filter by.
var modernIndexes = map[string][]string{
	"cdn_requests": {
		"INDEX session_hash_bloom session_hash TYPE bloom_filter GRANULARITY 4",
		"INDEX path_template_bloom path_template TYPE bloom_filter GRANULARITY 4",
	},
}

// modernOverrides replaces whole statements in the modern rendering, keyed
// by "VERSION/INDEX" (migration version, 1-based statement index), for
// what the rules cannot express. Empty so far.
var modernOverrides = map[string]string{}

// Modern reports whether t gets the modern rendering.
func (t Target) Modern() bool { return t.Server.AtLeast(ModernSchema) }

// Rendering names the rendering t applies, as recorded in
// schema_migrations: "modern" or "legacy".
func (t Target) Rendering() string {
	if t.Modern() {
		return "modern"
	}
	return "legacy"
}

var (
	createTableHead = regexp.MustCompile(`(?is)^(CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?([A-Za-z_]\w*)\s*)\(`)
	alterAddColumn  = regexp.MustCompile(`(?is)^(ALTER\s+TABLE\s+[A-Za-z_]\w*\s+(?:ADD|MODIFY)\s+COLUMN\s+(?:IF\s+(?:NOT\s+)?EXISTS\s+)?)(.*)$`)
	mergeTreeEngine = regexp.MustCompile(`(?is)\bENGINE\s*=\s*[A-Za-z]*MergeTree\b`)
	settingsClause  = regexp.MustCompile(`(?is)\bSETTINGS\b`)
	ttlClause       = regexp.MustCompile(`(?is)\bTTL\b`)
	partitionColumn = regexp.MustCompile(`(?is)\bPARTITION\s+BY\s+(?:[A-Za-z]\w*\s*\(\s*)?([A-Za-z_]\w*)\s*\)?\s`)
	columnHead      = regexp.MustCompile(`^((?:\s*--[^\n]*\n)*\s*)([A-Za-z_]\w*|` + "`[^`]+`" + `)(\s+)`)
	hasCodec        = regexp.MustCompile(`(?i)\bCODEC\s*\(`)
	defaultExpr     = regexp.MustCompile(`(?i)^\s*(DEFAULT|MATERIALIZED|ALIAS|EPHEMERAL)\b`)
)

// modernize rewrites one migration statement for a modern server (see the
// comment above). key is "VERSION/INDEX" for modernOverrides.
func modernize(statement, key string, retention map[string]time.Duration) (string, error) {
	if o, ok := modernOverrides[key]; ok {
		return o, nil
	}
	lead := leadComments.FindString(statement)
	body := statement[len(lead):]
	if m := createTableHead.FindStringSubmatchIndex(body); m != nil {
		name := body[m[4]:m[5]]
		open := m[1] - 1
		end := matchParen(body, open)
		if end < 0 {
			return "", fmt.Errorf("table %s: unbalanced parentheses in the column list", name)
		}
		rest := body[end+1:]
		if !mergeTreeEngine.MatchString(rest) {
			if nullEngine.MatchString(rest) {
				return lead + body[:open+1] + modernEntryColumns(body[open+1:end]) + ")" + rest, nil
			}
			return statement, nil
		}
		items := splitTopLevel(body[open+1 : end])
		event := false
		for _, it := range items {
			if n, _, _, ok := splitColumn(it); ok && n == "_partition" {
				event = true
			}
		}
		types := map[string]string{}
		for i, it := range items {
			n, typ, tail, ok := splitColumn(it)
			if !ok {
				continue
			}
			if event && n == "time" && typ == "DateTime" {
				typ = "DateTime64(3, 'UTC')"
				tail = strings.Replace(tail, "(UTC, seconds)", "(UTC, milliseconds)", 1)
			}
			types[n] = typ
			items[i] = rebuildColumn(it, typ, tail, modernCodec(n, typ))
		}
		if idx := modernIndexes[name]; len(idx) > 0 {
			last := len(items) - 1
			items[last] = strings.TrimRight(items[last], " \t\n")
			for _, x := range idx {
				items = append(items, "\n    "+x)
			}
		}
		cols := strings.Join(items, ",")
		if !strings.HasSuffix(cols, "\n") {
			cols += "\n"
		}
		rest = strings.TrimRight(rest, " \t\n;")
		var ttl string
		if keep, ok := retention[name]; ok && keep > 0 {
			if err := CheckTTL(keep); err != nil {
				return "", fmt.Errorf("table %s: %w", name, err)
			}
			pm := partitionColumn.FindStringSubmatch(rest + "\n")
			if pm == nil || !isTimeType(types[pm[1]]) {
				return "", fmt.Errorf("table %s: retention is configured but its PARTITION BY names no time column to put a TTL on", name)
			}
			if ttlClause.MatchString(rest) {
				return "", fmt.Errorf("table %s: the migration sets a TTL itself; drop it from retention.tables or from the migration", name)
			}
			ttl = "TTL toDateTime(" + pm[1] + ") + " + ttlInterval(keep)
		}
		if loc := settingsClause.FindStringIndex(rest); loc != nil {
			head, settings := strings.TrimRight(rest[:loc[0]], " \t\n"), rest[loc[1]:]
			if ttl != "" {
				head += "\n" + ttl
			}
			rest = head + "\nSETTINGS ttl_only_drop_parts = 1," + settings
		} else {
			if ttl != "" {
				rest += "\n" + ttl
			}
			rest += "\nSETTINGS ttl_only_drop_parts = 1"
		}
		return lead + body[:open+1] + cols + ")" + rest, nil
	}
	if m := alterAddColumn.FindStringSubmatch(body); m != nil {
		if n, typ, tail, ok := splitColumn(m[2]); ok {
			return lead + m[1] + rebuildColumn(m[2], typ, tail, modernCodec(n, typ)), nil
		}
	}
	return statement, nil
}

// modernEntryColumns renders the columns of a Null-engine entry table
// (0019_fences: NAME_in, written by logpipe, its view storing the rows in
// NAME) for a modern server: the event time gets NAME's type, so that no
// millisecond is lost on the way; nothing else changes (it stores nothing,
// so no codecs).
func modernEntryColumns(list string) string {
	items := splitTopLevel(list)
	event := false
	for _, it := range items {
		if n, _, _, ok := splitColumn(it); ok && n == "_partition" {
			event = true
		}
	}
	if !event {
		return list
	}
	for i, it := range items {
		if n, typ, tail, ok := splitColumn(it); ok && n == "time" && typ == "DateTime" {
			items[i] = rebuildColumn(it, "DateTime64(3, 'UTC')", tail, "")
		}
	}
	return strings.Join(items, ",")
}

// modernCodec is the compression codec a column gets in the modern
// rendering, "" for the server's default.
func modernCodec(name, typ string) string {
	switch {
	case name == "_offset":
		return "CODEC(DoubleDelta, ZSTD(1))" // a counter: +1 per record
	case isTimeType(typ) && typ != "Date", typ == "UInt64" && strings.HasSuffix(name, "_ms"):
		return "CODEC(Delta, ZSTD(1))"
	case typ == "String", strings.HasPrefix(typ, "Array("):
		return "CODEC(ZSTD(1))"
	}
	return ""
}

func isTimeType(typ string) bool {
	return typ == "DateTime" || typ == "Date" || strings.HasPrefix(typ, "DateTime(") || strings.HasPrefix(typ, "DateTime64(")
}

// ttlInterval renders a retention as a TTL interval.
func ttlInterval(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("toIntervalDay(%d)", d/(24*time.Hour))
	}
	if d%time.Hour == 0 {
		return fmt.Sprintf("toIntervalHour(%d)", d/time.Hour)
	}
	return fmt.Sprintf("toIntervalSecond(%d)", (d+time.Second-1)/time.Second)
}

// MaxTTL is the longest retention rendered as a TTL: DateTime ends in
// 2106, and a TTL past it wraps around to the past, expiring every row.
const MaxTTL = 50 * 365 * 24 * time.Hour

// CheckTTL refuses a retention too long for a TTL.
func CheckTTL(keep time.Duration) error {
	if keep > MaxTTL {
		return fmt.Errorf("retention %v is longer than 50 years, which a TTL cannot express (DateTime ends in 2106); leave the table out of retention.tables to keep it forever", keep)
	}
	return nil
}

// TTLExpression is the TTL the modern rendering puts on a table whose
// partition column is col, for a retention of keep.
func TTLExpression(col string, keep time.Duration) string {
	return "toDateTime(" + col + ") + " + ttlInterval(keep)
}

// splitColumn cuts a column definition into name, type and what follows
// the type (DEFAULT, COMMENT, CODEC, ...). ok is false for what is not a
// column (INDEX, PROJECTION, CONSTRAINT).
func splitColumn(def string) (name, typ, tail string, ok bool) {
	m := columnHead.FindStringSubmatchIndex(def)
	if m == nil {
		return "", "", "", false
	}
	name = strings.Trim(def[m[4]:m[5]], "`")
	switch strings.ToUpper(name) {
	case "INDEX", "PROJECTION", "CONSTRAINT", "PRIMARY":
		return "", "", "", false
	}
	rest := def[m[1]:]
	if defaultExpr.MatchString(rest) {
		return name, "", rest, true // no type written
	}
	i := 0
	for i < len(rest) && (isIdentByte(rest[i])) {
		i++
	}
	if i == 0 {
		return "", "", "", false
	}
	if j := skipSpace(rest, i); j < len(rest) && rest[j] == '(' {
		e := matchParen(rest, j)
		if e < 0 {
			return "", "", "", false
		}
		i = e + 1
	}
	return name, rest[:i], rest[i:], true
}

// rebuildColumn writes a column definition back with type typ (the part
// before the type kept as written) and codec appended unless it has one.
func rebuildColumn(def, typ, tail, codec string) string {
	m := columnHead.FindStringSubmatchIndex(def)
	head := def[:m[1]]
	trail := tail[len(strings.TrimRight(tail, " \t\n")):]
	tail = strings.TrimRight(tail, " \t\n")
	out := head + typ + tail
	if codec != "" && typ != "" && !hasCodec.MatchString(tail) {
		out += " " + codec
	}
	return out + trail
}

func isIdentByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func skipSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n') {
		i++
	}
	return i
}

// matchParen returns the index of the parenthesis closing the one at
// s[open], skipping quoted strings and comments, or -1.
func matchParen(s string, open int) int {
	depth := 0
	for i := open; i < len(s); i++ {
		switch c := s[i]; c {
		case '\'', '`', '"':
			i = skipQuoted(s, i)
			if i < 0 {
				return -1
			}
		case '-':
			if i+1 < len(s) && s[i+1] == '-' {
				for i < len(s) && s[i] != '\n' {
					i++
				}
			}
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

// skipQuoted returns the index of the quote closing the one at s[i]
// (backslash escapes and doubled quotes allowed), or -1.
func skipQuoted(s string, i int) int {
	q := s[i]
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			j++
		case q:
			if j+1 < len(s) && s[j+1] == q {
				j++
				continue
			}
			return j
		}
	}
	return -1
}

// splitTopLevel splits a column list at commas outside parentheses,
// quotes and comments, keeping each item's surrounding whitespace.
func splitTopLevel(s string) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\'', '`', '"':
			if j := skipQuoted(s, i); j >= 0 {
				i = j
			}
		case '-':
			if i+1 < len(s) && s[i+1] == '-' {
				for i < len(s) && s[i] != '\n' {
					i++
				}
			}
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

// Print writes the DDL that applying every embedded migration to t sends,
// in order, statements separated by lines holding only ";" (for operators to
// review: logpipe migrate -print). schema_migrations comes first.
func Print(w io.Writer, t Target) error {
	ms, err := Migrations()
	if err != nil {
		return err
	}
	managed := Managed(ms)
	fmt.Fprintf(w, "-- logpipe schema, %s rendering for ClickHouse %s", t.Rendering(), t.Server)
	if t.OnCluster() {
		fmt.Fprintf(w, " on cluster %s, database %s", t.Cluster, t.Database)
	}
	fmt.Fprintln(w)
	create, err := t.Render(migrationsTable, managed)
	if err != nil {
		return err
	}
	for _, st := range create {
		fmt.Fprintf(w, "\n-- schema_migrations\n%s\n;\n", st)
	}
	for _, m := range ms {
		for j, st := range m.Statements {
			out, err := t.render(st, fmt.Sprintf("%d/%d", m.Version, j+1), managed)
			if err != nil {
				return fmt.Errorf("migration %04d_%s statement %d: %w", m.Version, m.Name, j+1, err)
			}
			for _, o := range out {
				fmt.Fprintf(w, "\n-- %04d_%s statement %d\n%s\n;\n", m.Version, m.Name, j+1, o)
			}
		}
	}
	return nil
}
