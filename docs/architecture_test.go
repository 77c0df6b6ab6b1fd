// Package docs is logpipe's documentation. Its test checks that the code
// keeps the rules docs/architecture.md states: what each package may
// import, and that the production binary links no test rig.
package docs

import (
	"encoding/json"
	"io"
	"os/exec"
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
