package schemas

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Variant is a catalogue query's text for servers from MinVersion on, where
// one text cannot serve every supported server (a construct 18.16 lacks,
// such as ASOF JOIN or window functions, or one newer servers refuse).
//
// In the query file, variants follow the base SQL (which serves every
// server older than the first variant, down to 18.16), each introduced by a
// line
//
//	-- variant: 24.1  -- why this variant exists
//
// The same parameters serve every variant. Prefer one text for all: the
// differential test (schemas/chdb_test.go) runs the base text on 18.16 and
// the chosen variant on the embedded modern engine and compares answers, so
// a variant must give the same answer as the base text.
type Variant struct {
	MinVersion ServerVersion
	Why        string
	SQL        string
}

var variantLine = regexp.MustCompile(`^\s*--\s*variant:\s*(\d+\.\d+)\s*(?:--\s*(.*))?$`)

// splitVariants cuts a query's SQL (after the header) into the base text
// and its variants.
func splitVariants(name, sql string) (string, []Variant, error) {
	lines := strings.Split(sql, "\n")
	var sections [][]string
	var vs []Variant
	cur := []string{}
	for i, l := range lines {
		m := variantLine.FindStringSubmatch(l)
		if m == nil {
			if strings.Contains(strings.ToLower(l), "variant:") && strings.HasPrefix(strings.TrimSpace(l), "--") {
				return "", nil, fmt.Errorf("query %s: %q: want '-- variant: MAJOR.MINOR [-- why]'", name, strings.TrimSpace(l))
			}
			cur = append(cur, l)
			continue
		}
		v, err := ParseServerVersion(m[1])
		if err != nil {
			return "", nil, fmt.Errorf("query %s line %d: %w", name, i+1, err)
		}
		sections = append(sections, cur)
		cur = []string{}
		vs = append(vs, Variant{MinVersion: v, Why: strings.TrimSpace(m[2])})
	}
	sections = append(sections, cur)
	clean := func(ls []string) string {
		return strings.TrimSuffix(strings.TrimSpace(strings.Join(ls, "\n")), ";")
	}
	base := clean(sections[0])
	for i := range vs {
		vs[i].SQL = clean(sections[i+1])
		if vs[i].SQL == "" {
			return "", nil, fmt.Errorf("query %s: variant %s has no SQL", name, vs[i].MinVersion)
		}
		if !vs[i].MinVersion.AtLeast(ServerVersion{19, 1}) {
			return "", nil, fmt.Errorf("query %s: variant %s: the base text serves %s; variants are for newer servers", name, vs[i].MinVersion, Oldest)
		}
		if i > 0 && !vs[i].MinVersion.AtLeast(vs[i-1].MinVersion) || i > 0 && vs[i].MinVersion == vs[i-1].MinVersion {
			return "", nil, fmt.Errorf("query %s: variants must be in increasing version order (%s after %s)", name, vs[i].MinVersion, vs[i-1].MinVersion)
		}
	}
	return base, vs, nil
}

// For returns the query as it runs on a server of version v: SQL is the
// newest variant whose MinVersion is at most v, or the base text (also for
// an unknown version). The result has no variants left.
func (q Query) For(v ServerVersion) Query {
	out := q
	out.Variants = nil
	if v.IsZero() {
		return out
	}
	i := sort.Search(len(q.Variants), func(i int) bool { return !v.AtLeast(q.Variants[i].MinVersion) })
	if i > 0 {
		out.SQL = q.Variants[i-1].SQL
	}
	var set []string
	for _, s := range q.Settings {
		if v.AtLeast(s.MinVersion) {
			set = append(set, s.Text)
		}
	}
	if len(set) > 0 {
		out.SQL += "\nSETTINGS " + strings.Join(set, ", ")
	}
	out.Settings = nil
	return out
}

// Texts returns every text of the query: the base (for Oldest) and each
// variant, keyed by the version it starts at. Tests use it to run them all.
func (q Query) Texts() map[ServerVersion]string {
	out := map[ServerVersion]string{Oldest: q.SQL}
	for _, v := range q.Variants {
		out[v.MinVersion] = v.SQL
	}
	return out
}
