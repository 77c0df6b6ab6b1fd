package schemas

import (
	"context"
	"embed"
	"fmt"
	"github.com/logpipe/logpipe/chclient"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

//go:embed queries/*.sql
var queryFiles embed.FS

// Query is one entry of the analysts' query catalogue: a file
// queries/NAME.sql whose header comment says what it answers.
//
// Header lines, before the SQL:
//
//	-- question: Which jobs take longest?
//	-- param: since DateTime = now() - INTERVAL 7 DAY  -- a comment
//	-- example:
//	--   job  p50_s  p95_s
//
// In the SQL, {name:Type} is replaced by the parameter's value as a
// quoted literal of that type (ClickHouse 18.16 has no server-side query
// parameters, so logpipe binds them itself, safely). A default that is an
// expression (now() - INTERVAL 7 DAY) is inserted as written.
//
// A header may also define lets: values the query needs that a query of
// their own computes from the parameters, such as the earliest partition
// worth reading. The let's SQL follows its line, indented:
//
//	-- let: bound DateTime  -- the earliest day to read
//	--   SELECT min(day) FROM job_runs_state WHERE ...{at:DateTime}...
//
// and the SQL uses it as {bound:DateTime}. Render puts the let's query in
// its place as a scalar subquery, so the text runs on its own (`logpipe
// query -sql` prints it); RenderWith computes each let first, with one
// query, and binds its value as a literal, which is the same answer for
// less work: ClickHouse 18.16 runs a scalar subquery again for every
// nesting level of the query around it. A let may use the parameters and
// the lets before it; it is no parameter (a value for it is refused).
type Query struct {
	Name     string
	Question string
	Params   []Param
	Lets     []Let
	Example  string
	SQL      string
	// Variants are texts for newer servers (see Variant); For picks one.
	Variants []Variant
	// Settings are query settings for newer servers (see Setting); For
	// adds those the server takes.
	Settings []Setting
}

// Setting is a query-level setting that For adds (as SETTINGS at the end
// of the statement) for servers from MinVersion on, written in the header
// as
//
//	-- settings: 24.1 allow_experimental_analyzer = 0  -- why
//
// It may change how fast a query runs, never its answer (the differential
// test runs the text For gives on the embedded modern engine).
type Setting struct {
	MinVersion ServerVersion
	Text       string // name = value
	Why        string
}

// Param is one parameter of a catalogue query.
type Param struct {
	Name    string
	Type    string // String, DateTime, Date, UInt64, Int64, Float64
	Default string // SQL expression used when no value is given; "" = required
	Doc     string
}

// Let is a value computed by a query of its own before the catalogue
// query runs (see Query).
type Let struct {
	Name string
	Type string // DateTime, Date, UInt64, Int64, String
	Doc  string
	SQL  string // returns one row with one value; may use parameters and earlier lets
}

// Queries returns the catalogue, by name.
func Queries() ([]Query, error) {
	entries, err := fs.ReadDir(queryFiles, "queries")
	if err != nil {
		return nil, err
	}
	var qs []Query
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		b, err := fs.ReadFile(queryFiles, "queries/"+e.Name())
		if err != nil {
			return nil, err
		}
		q, err := ParseQuery(strings.TrimSuffix(e.Name(), ".sql"), string(b))
		if err != nil {
			return nil, err
		}
		qs = append(qs, q)
	}
	sort.Slice(qs, func(i, j int) bool { return qs[i].Name < qs[j].Name })
	return qs, nil
}

// LookupQuery returns the catalogue query called name.
func LookupQuery(name string) (Query, error) {
	qs, err := Queries()
	if err != nil {
		return Query{}, err
	}
	var names []string
	for _, q := range qs {
		if q.Name == name {
			return q, nil
		}
		names = append(names, q.Name)
	}
	return Query{}, fmt.Errorf("no query %q in the catalogue (have: %s)", name, strings.Join(names, ", "))
}

var settingLine = regexp.MustCompile(`^(\d+\.\d+)\s+(\w+)\s*=\s*(\w+)(?:\s+--\s*(.*))?$`)

var paramLine = regexp.MustCompile(`^(\w+)\s+(\w+)(?:\s*=\s*(.*?))?(?:\s+--\s*(.*))?$`)

// ParseQuery reads a catalogue file.
func ParseQuery(name, text string) (Query, error) {
	q := Query{Name: name}
	lines := strings.Split(text, "\n")
	i := 0
	inExample, inLet := false, false
	var example []string
	for ; i < len(lines); i++ {
		l := strings.TrimSpace(lines[i])
		if !strings.HasPrefix(l, "--") {
			if l == "" && i+1 < len(lines) {
				continue
			}
			break
		}
		body := strings.TrimPrefix(strings.TrimPrefix(l, "--"), " ")
		switch {
		case strings.HasPrefix(body, "question:"):
			inExample, inLet = false, false
			q.Question = strings.TrimSpace(strings.TrimPrefix(body, "question:"))
		case strings.HasPrefix(body, "param:"):
			inExample, inLet = false, false
			m := paramLine.FindStringSubmatch(strings.TrimSpace(strings.TrimPrefix(body, "param:")))
			if m == nil {
				return q, fmt.Errorf("query %s line %d: param must be 'name Type [= default] [-- doc]'", name, i+1)
			}
			q.Params = append(q.Params, Param{Name: m[1], Type: m[2], Default: strings.TrimSpace(m[3]), Doc: m[4]})
		case strings.HasPrefix(body, "let:"):
			inExample, inLet = false, true
			m := letLine.FindStringSubmatch(strings.TrimSpace(strings.TrimPrefix(body, "let:")))
			if m == nil {
				return q, fmt.Errorf("query %s line %d: let must be 'name Type [-- doc]', its SQL on the indented lines after it", name, i+1)
			}
			switch m[2] {
			case "DateTime", "Date", "UInt64", "Int64", "String":
			default:
				return q, fmt.Errorf("query %s line %d: let %s: type %s (want DateTime, Date, UInt64, Int64 or String)", name, i+1, m[1], m[2])
			}
			if q.param(m[1]) != nil || q.let(m[1]) != nil {
				return q, fmt.Errorf("query %s line %d: %s is defined twice", name, i+1, m[1])
			}
			q.Lets = append(q.Lets, Let{Name: m[1], Type: m[2], Doc: m[3]})
		case strings.HasPrefix(body, "settings:"):
			inExample, inLet = false, false
			m := settingLine.FindStringSubmatch(strings.TrimSpace(strings.TrimPrefix(body, "settings:")))
			if m == nil {
				return q, fmt.Errorf("query %s line %d: settings must be 'MAJOR.MINOR name = value [-- why]'", name, i+1)
			}
			v, err := ParseServerVersion(m[1])
			if err != nil {
				return q, fmt.Errorf("query %s line %d: %w", name, i+1, err)
			}
			q.Settings = append(q.Settings, Setting{MinVersion: v, Text: m[2] + " = " + m[3], Why: m[4]})
		case strings.HasPrefix(body, "example:"):
			inExample, inLet = true, false
		case inLet && strings.HasPrefix(body, "  "):
			l := &q.Lets[len(q.Lets)-1]
			l.SQL = strings.TrimSpace(l.SQL + "\n" + strings.TrimRight(strings.TrimPrefix(body, "  "), " "))
		case inLet:
			inLet = false // the let's SQL ends at the first line that is not indented
		case inExample:
			example = append(example, strings.TrimPrefix(body, " "))
		}
	}
	q.Example = strings.TrimRight(strings.Join(example, "\n"), "\n ")
	q.SQL = strings.TrimSpace(strings.Join(lines[i:], "\n"))
	q.SQL = strings.TrimSuffix(q.SQL, ";")
	var err error
	if q.SQL, q.Variants, err = splitVariants(name, q.SQL); err != nil {
		return q, err
	}
	if q.Question == "" {
		return q, fmt.Errorf("query %s: header has no '-- question:' line", name)
	}
	if q.SQL == "" {
		return q, fmt.Errorf("query %s: no SQL after the header", name)
	}
	for _, text := range q.Texts() {
		for _, ref := range placeholder.FindAllStringSubmatch(text, -1) {
			if q.param(ref[1]) == nil && q.let(ref[1]) == nil {
				return q, fmt.Errorf("query %s: {%s:%s} is not declared with '-- param:' or '-- let:'", name, ref[1], ref[2])
			}
			if l := q.let(ref[1]); ref[2] == "In" && (l == nil || l.Type != "String") {
				return q, fmt.Errorf("query %s: {%s:In} needs a String let %s", name, ref[1], ref[1])
			}
		}
	}
	for i, l := range q.Lets {
		if l.SQL == "" {
			return q, fmt.Errorf("query %s: let %s has no SQL (indented lines after it)", name, l.Name)
		}
		for _, ref := range placeholder.FindAllStringSubmatch(l.SQL, -1) {
			if q.param(ref[1]) == nil && !q.letBefore(ref[1], i) {
				return q, fmt.Errorf("query %s: let %s: {%s:%s} is neither a parameter nor an earlier let", name, l.Name, ref[1], ref[2])
			}
		}
	}
	return q, nil
}

var letLine = regexp.MustCompile(`^(\w+)\s+(\w+)(?:\s+--\s*(.*))?$`)

func (q Query) let(name string) *Let {
	for i := range q.Lets {
		if q.Lets[i].Name == name {
			return &q.Lets[i]
		}
	}
	return nil
}

func (q Query) letBefore(name string, i int) bool {
	for _, l := range q.Lets[:i] {
		if l.Name == name {
			return true
		}
	}
	return false
}

func (q Query) param(name string) *Param {
	for i := range q.Params {
		if q.Params[i].Name == name {
			return &q.Params[i]
		}
	}
	return nil
}

var placeholder = regexp.MustCompile(`\{(\w+):(\w+)\}`)

// Render binds values to the query's parameters and returns the SQL to
// run, one statement: each let is its query as a scalar subquery. Unknown
// or malformed values are errors naming the parameter.
func (q Query) Render(values map[string]string) (string, error) {
	return q.RenderWith(context.Background(), nil, values)
}

// Scalar runs a query that returns one row with one value and returns that
// value as text.
type Scalar func(ctx context.Context, sql string) (string, error)

// RenderWith is Render with each let computed first by scalar (in order,
// one query each) and bound as a literal. With a nil scalar the lets are
// inlined as scalar subqueries, as Render does; both give the same answer.
func (q Query) RenderWith(ctx context.Context, scalar Scalar, values map[string]string) (string, error) {
	bound, err := q.bind(values)
	if err != nil {
		return "", err
	}
	// {L:In} is the operator to filter on String let L's list: IN while the
	// list is a literal (the primary key can use it), GLOBAL IN while it is
	// its subquery (which on a cluster reads a Distributed table: GLOBAL
	// builds it once, on the server the query came to).
	in := map[string]string{}
	subst := func(text string) string {
		return placeholder.ReplaceAllStringFunc(text, func(m string) string {
			ref := placeholder.FindStringSubmatch(m)
			if ref[2] == "In" {
				return in[ref[1]]
			}
			return bound[ref[1]]
		})
	}
	for _, l := range q.Lets {
		sql := subst(l.SQL)
		if scalar == nil {
			bound[l.Name] = "(\n" + sql + "\n)"
			in[l.Name] = "GLOBAL IN"
			continue
		}
		// Through a scalar subquery, as inlined: the same value, typed
		// as the let says; times as seconds since the epoch (the
		// server's time zone does not enter).
		conv := map[string]string{"DateTime": "toUInt32", "Date": "toUInt16", "UInt64": "toUInt64", "Int64": "toInt64", "String": ""}[l.Type]
		v, err := scalar(ctx, "SELECT toString("+conv+"((\n"+sql+"\n)))")
		if err != nil {
			return "", fmt.Errorf("query %s: let %s: %w", q.Name, l.Name, err)
		}
		if l.Type == "String" {
			// A list (of templates, say) is bound as a literal while it
			// is short; a longer one would pass the server's
			// max_query_size (256 KiB by default), so its query stays
			// inlined: the same answer, computed where it is used.
			if len(v) > maxStringLet {
				bound[l.Name] = "(\n" + sql + "\n)"
				in[l.Name] = "GLOBAL IN"
			} else {
				bound[l.Name] = chclient.String(v)
				in[l.Name] = "IN"
			}
			continue
		}
		v = strings.TrimSpace(v)
		if _, err := strconv.ParseUint(strings.TrimPrefix(v, "-"), 10, 64); err != nil {
			return "", fmt.Errorf("query %s: let %s: %q is not a number", q.Name, l.Name, v)
		}
		switch l.Type {
		case "DateTime":
			v = "toDateTime(" + v + ")"
		case "Date":
			v = "toDate(" + v + ")"
		}
		bound[l.Name] = v
	}
	return subst(q.SQL), nil
}

// maxStringLet is the longest String let bound as a literal (bytes).
const maxStringLet = 64 << 10

// bind returns the literal of each parameter.
func (q Query) bind(values map[string]string) (map[string]string, error) {
	for k := range values {
		if q.param(k) == nil {
			return nil, fmt.Errorf("query %s has no parameter %q", q.Name, k)
		}
	}
	bound := map[string]string{}
	for _, p := range q.Params {
		v, ok := values[p.Name]
		if !ok {
			if p.Default == "" {
				return nil, fmt.Errorf("query %s: parameter %s (%s) is required", q.Name, p.Name, p.Type)
			}
			if lit, err := literal(p.Type, p.Default); err == nil && p.Type != "String" {
				bound[p.Name] = lit // a plain value: LIMIT wants a bare number
			} else {
				bound[p.Name] = "(" + p.Default + ")"
			}
			continue
		}
		lit, err := literal(p.Type, v)
		if err != nil {
			return nil, fmt.Errorf("query %s: parameter %s: %w", q.Name, p.Name, err)
		}
		bound[p.Name] = lit
	}
	return bound, nil
}

// literal renders v as a ClickHouse literal of type t.
func literal(t, v string) (string, error) {
	switch t {
	case "String":
		return chclient.String(v), nil
	case "DateTime":
		for _, l := range []string{"2006-01-02 15:04:05", time.RFC3339, "2006-01-02T15:04:05", "2006-01-02"} {
			if tm, err := time.Parse(l, v); err == nil {
				return fmt.Sprintf("toDateTime('%s', 'UTC')", tm.UTC().Format("2006-01-02 15:04:05")), nil
			}
		}
		return "", fmt.Errorf("%q is not a date-time (2006-01-02 15:04:05 or RFC 3339)", v)
	case "Date":
		if _, err := time.Parse("2006-01-02", v); err != nil {
			return "", fmt.Errorf("%q is not a date (2006-01-02)", v)
		}
		return fmt.Sprintf("toDate('%s')", v), nil
	case "UInt64", "UInt32":
		if _, err := strconv.ParseUint(v, 10, 64); err != nil {
			return "", fmt.Errorf("%q is not an unsigned integer", v)
		}
		return v, nil
	case "Int64", "Int32":
		if _, err := strconv.ParseInt(v, 10, 64); err != nil {
			return "", fmt.Errorf("%q is not an integer", v)
		}
		return v, nil
	case "Float64":
		if _, err := strconv.ParseFloat(v, 64); err != nil {
			return "", fmt.Errorf("%q is not a number", v)
		}
		return v, nil
	}
	return "", fmt.Errorf("type %s is not supported", t)
}
