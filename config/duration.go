package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// ParseDuration reads the one duration syntax logpipe uses everywhere
// (config durations, retention, command flags such as -back and -window):
// a Go duration ("90m", "12h", "1h30m", "250ms") optionally preceded by
// whole days and weeks ("30d", "1w", "1d12h").
func ParseDuration(s string) (time.Duration, error) {
	in := strings.TrimSpace(s)
	var d time.Duration
	rest := in
	for rest != "" {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 || i >= len(rest) || (rest[i] != 'd' && rest[i] != 'w') {
			break
		}
		n, err := strconv.ParseInt(rest[:i], 10, 32)
		if err != nil {
			return 0, fmt.Errorf("%q is not a duration (30d, 12h, 90m, 1d12h)", s)
		}
		unit := 24 * time.Hour
		if rest[i] == 'w' {
			unit *= 7
		}
		d += time.Duration(n) * unit
		rest = rest[i+1:]
	}
	if rest == "" && in != "" {
		return d, nil
	}
	g, err := time.ParseDuration(rest)
	if err != nil || (d != 0 && g < 0) {
		return 0, fmt.Errorf("%q is not a duration (30d, 12h, 90m, 1d12h)", s)
	}
	return d + g, nil
}

var durationType = reflect.TypeOf(time.Duration(0))

// dayDurations rewrites, in the YAML text b, every value of a
// time.Duration field written with days or weeks ("1d") into Go's syntax
// ("24h0m0s"), in place, so that the strict decoder reads it and its
// error messages keep their line numbers.
func dayDurations(b []byte, t reflect.Type) []byte {
	var root yaml.Node
	if yaml.Unmarshal(b, &root) != nil || len(root.Content) == 0 {
		return b
	}
	type patch struct {
		line, col int
		old, new  string
	}
	var patches []patch
	var walk func(n *yaml.Node, t reflect.Type)
	walk = func(n *yaml.Node, t reflect.Type) {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch {
		case t == durationType:
			if n.Kind == yaml.ScalarNode {
				if _, err := time.ParseDuration(n.Value); err != nil {
					if d, err := ParseDuration(n.Value); err == nil {
						patches = append(patches, patch{n.Line, n.Column, n.Value, d.String()})
					}
				}
			}
		case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if f, ok := yamlField(t, n.Content[i].Value); ok {
					walk(n.Content[i+1], f.Type)
				}
			}
		case t.Kind() == reflect.Map && n.Kind == yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				walk(n.Content[i+1], t.Elem())
			}
		case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
			for _, c := range n.Content {
				walk(c, t.Elem())
			}
		}
	}
	walk(root.Content[0], t)
	if len(patches) == 0 {
		return b
	}
	lines := strings.SplitAfter(string(b), "\n")
	// Last first, so that earlier columns of a line stay valid.
	for i := len(patches) - 1; i >= 0; i-- {
		p := patches[i]
		if p.line < 1 || p.line > len(lines) {
			continue
		}
		l := lines[p.line-1]
		at := p.col - 1
		if at < 0 || at > len(l) {
			continue
		}
		if at < len(l) && (l[at] == '"' || l[at] == '\'') {
			at++
		}
		if strings.HasPrefix(l[at:], p.old) {
			lines[p.line-1] = l[:at] + p.new + l[at+len(p.old):]
		}
	}
	return []byte(strings.Join(lines, ""))
}

// yamlField finds the struct field whose yaml tag is name.
func yamlField(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if strings.Split(f.Tag.Get("yaml"), ",")[0] == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}
