package config

import (
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// commentedSetting matches a commented-out setting of the example:
// "  # key: value" or "  #   - item".
var commentedSetting = regexp.MustCompile(`^(\s*)# (\s*(?:[a-z_]+:(?:\s|$)|- ))`)

// TestExampleDocumentsEveryField: deploy/logpipe.example.yaml, with its
// commented-out settings uncommented, decodes strictly (every documented
// setting exists) and sets every field of Config.
func TestExampleDocumentsEveryField(t *testing.T) {
	b, err := os.ReadFile("../deploy/logpipe.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var active Config
	if err := Parse(b, &active); err != nil {
		t.Fatalf("the example as shipped: %v", err)
	}
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		lines[i] = commentedSetting.ReplaceAllString(l, "$1$2")
	}
	all := []byte(strings.Join(lines, "\n"))
	var c Config
	if err := Parse(all, &c); err != nil {
		t.Fatalf("the example with its commented-out settings: %v\n%s", err, all)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(all, &root); err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	yamlPaths(root.Content[0], reflect.TypeOf(Config{}), "", documented)
	var fields []string
	typePaths(reflect.TypeOf(Config{}), "", &fields)
	var missing []string
	for _, f := range fields {
		if !documented[f] {
			missing = append(missing, f)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("deploy/logpipe.example.yaml does not document: %s", strings.Join(missing, ", "))
	}
}

// typePaths lists the YAML paths of a config type: a.b, list items as
// a[].b; maps and lists of scalars are leaves.
func typePaths(t reflect.Type, prefix string, out *[]string) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if tag == "" || tag == "-" || !f.IsExported() {
			continue
		}
		p := prefix + tag
		ft := f.Type
		switch {
		case ft.Kind() == reflect.Struct && ft != timeType:
			typePaths(ft, p+".", out)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			typePaths(ft.Elem(), p+"[].", out)
		default:
			*out = append(*out, p)
		}
	}
}

var timeType = reflect.TypeOf(Config{}.Watch.Silence).Elem().Field(2).Type

// yamlPaths records the paths a YAML document sets, in typePaths' terms.
func yamlPaths(n *yaml.Node, t reflect.Type, prefix string, out map[string]bool) {
	switch {
	case t.Kind() == reflect.Struct && t != timeType && n.Kind == yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			f, ok := yamlField(t, n.Content[i].Value)
			if !ok {
				continue
			}
			p := prefix + n.Content[i].Value
			ft := f.Type
			switch {
			case ft.Kind() == reflect.Struct && ft != timeType:
				yamlPaths(n.Content[i+1], ft, p+".", out)
				continue
			case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
				yamlPaths(n.Content[i+1], ft, p, out)
				continue
			}
			out[p] = true
		}
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for _, c := range n.Content {
			yamlPaths(c, t.Elem(), prefix+"[].", out)
		}
	}
}
