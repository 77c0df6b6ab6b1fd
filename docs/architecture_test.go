// Package docs is logpipe's documentation. Its test checks that the code
// keeps the rules docs/architecture.md states: what each package may
// import, and that the production binary links no test rig.
package docs

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/logpipe/logpipe/"

// goList runs go list -json with args and decodes its packages.
func goList(t *testing.T, args ...string) []goPackage {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-json"}, args...)...)
	cmd.Dir = ".."
	out, err := cmd.Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("go list %v: %v\n%s", args, err, msg)
	}
	var pkgs []goPackage
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p goPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

type goPackage struct {
	ImportPath string
	Imports    []string
	Deps       []string
	GoFiles    []string
	Standard   bool
}

// TestProductionBinaryLinksNoTestRig: logpipe (the image's binary) links
// neither the testing package nor the local test rig — kfake, the broker
// and ClickHouse starters, the embedded ClickHouse — which live in
// logpipe-demo and the tests.
func TestProductionBinaryLinksNoTestRig(t *testing.T) {
	forbidden := []string{
		"testing",
		"github.com/twmb/franz-go/pkg/kfake",
		module + "internal/chserver",
		module + "internal/kafkabroker",
		module + "internal/chdbtest",
		module + "internal/chtest",
	}
	pkgs := goList(t, "-deps", "./cmd/logpipe")
	linked := map[string]bool{}
	for _, p := range pkgs {
		linked[p.ImportPath] = true
	}
	if !linked[module+"cmd/logpipe"] || !linked[module+"pipeline"] {
		t.Fatalf("go list -deps ./cmd/logpipe listed %d packages, not logpipe's: %v", len(pkgs), pkgs)
	}
	for _, f := range forbidden {
		if !linked[f] {
			continue
		}
		var via []string
		for _, p := range pkgs {
			for _, imp := range p.Imports {
				if imp == f {
					via = append(via, p.ImportPath)
				}
			}
		}
		t.Errorf("logpipe links %s (imported by %s): it belongs in cmd/logpipe-demo or a test", f, strings.Join(via, ", "))
	}
}

// rule is a row of docs/architecture.md's package table.
type rule struct {
	allowed  map[string]bool // logpipe packages (relative) and client names
	anything bool            // cmd/...: any import
	noRigs   bool            // anything but the test rigs
}

// clients names the Kafka and ClickHouse client libraries as the table
// does.
func client(path string) string {
	switch {
	case strings.HasPrefix(path, "github.com/segmentio/kafka-go"):
		return "kafka-go"
	case strings.HasPrefix(path, "github.com/twmb/franz-go"):
		return "franz-go"
	case strings.HasPrefix(path, "github.com/ClickHouse/clickhouse-go"), strings.HasPrefix(path, "github.com/ClickHouse/ch-go"):
		return "clickhouse-go"
	}
	return ""
}

var (
	kafkaSide      = map[string]bool{"ingest": true, "kafka-go": true, "franz-go": true}
	clickHouseSide = map[string]bool{"sink": true, "chclient": true, "checkpoint": true, "clickhouse-go": true}
	testRigs       = map[string]bool{"internal/chserver": true, "internal/chdbtest": true, "internal/kafkabroker": true, "internal/chtest": true}
)

// readRules parses the package table of architecture.md.
func readRules(t *testing.T) map[string]rule {
	t.Helper()
	b, err := os.ReadFile("architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	rules := map[string]rule{}
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(line, "|")
		if len(cells) < 5 {
			t.Fatalf("architecture.md: table row %q has fewer than 3 cells", line)
		}
		pkg := strings.Trim(strings.TrimSpace(cells[1]), "`")
		may := strings.TrimSpace(cells[len(cells)-2])
		r := rule{allowed: map[string]bool{}}
		switch {
		case may == "anything":
			r.anything = true
		case strings.HasPrefix(may, "anything but the test rigs"):
			r.anything, r.noRigs = true, true
		case may == "—":
		default:
			for _, f := range strings.Split(may, ",") {
				r.allowed[strings.Trim(strings.TrimSpace(f), "`")] = true
			}
		}
		rules[pkg] = r
	}
	if len(rules) < 10 {
		t.Fatalf("architecture.md: found %d package rows, want the whole table", len(rules))
	}
	return rules
}

// TestImportRules checks every package's imports against the table of
// docs/architecture.md and its rules: only cmd/... imports both a Kafka
// and a ClickHouse package; sink does not depend on transform, even
// through another package; no package
// but the test rigs and cmd/logpipe-demo imports testing or a test rig.
func TestImportRules(t *testing.T) {
	rules := readRules(t)
	seen := map[string]bool{}
	var violations []string
	for _, p := range goList(t, "./...") {
		rel, ok := strings.CutPrefix(p.ImportPath, module)
		if !ok || len(p.GoFiles) == 0 {
			continue // test-only packages (docs, deploy/...)
		}
		r, ok := rules[rel]
		if !ok {
			t.Errorf("package %s has no row in docs/architecture.md's table: add what it is for and what it may import", rel)
			continue
		}
		seen[rel] = true
		var kafka, clickhouse []string
		for _, imp := range p.Imports {
			name, ok := strings.CutPrefix(imp, module)
			if !ok {
				name = client(imp)
			}
			if imp == "testing" && !testRigs[rel] && rel != "cmd/logpipe-demo" {
				violations = append(violations, rel+" imports testing")
			}
			if name == "" {
				continue
			}
			if kafkaSide[name] {
				kafka = append(kafka, name)
			}
			if clickHouseSide[name] {
				clickhouse = append(clickhouse, name)
			}
			switch {
			case r.noRigs && testRigs[name]:
				violations = append(violations, rel+" imports "+name)
			case !r.anything && !r.allowed[name]:
				violations = append(violations, rel+" imports "+name)
			}
		}
		if rel == "sink" && slices.Contains(p.Deps, module+"transform") {
			violations = append(violations, "sink depends on transform (through another package)")
		}
		if len(kafka) > 0 && len(clickhouse) > 0 && !strings.HasPrefix(rel, "cmd/") {
			violations = append(violations, fmt.Sprintf("%s imports Kafka (%s) and ClickHouse (%s)", rel, strings.Join(kafka, ", "), strings.Join(clickhouse, ", ")))
		}
	}
	if !seen["pipeline"] || !seen["cmd/logpipe"] {
		t.Fatalf("go list ./... did not list logpipe's packages (saw %v)", seen)
	}
	for _, v := range violations {
		t.Errorf("%s: not allowed by docs/architecture.md", v)
	}
	// A row of a package that does not exist would hide a misspelt name.
	for pkg := range rules {
		if !seen[pkg] {
			t.Errorf("docs/architecture.md has a row for %s, which is no package", pkg)
		}
	}
}
