package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckLeaksNoSecret runs `logpipe check` (rows as JSON and as
// summary lines) on the leak corpus of every format: neither its output
// nor its rejection messages may hold a clear secret.
func TestCheckLeaksNoSecret(t *testing.T) {
	b, err := os.ReadFile("../../transform/testdata/leak/secrets.txt")
	if err != nil {
		t.Fatal(err)
	}
	secrets := strings.Fields(string(b))
	files, _ := filepath.Glob("../../transform/testdata/leak/corpus/*.log")
	if len(files) == 0 {
		t.Fatal("no leak corpus")
	}
	for _, f := range files {
		format, _, _ := strings.Cut(filepath.Base(f), "__")
		args := []string{"-format", format}
		if ob, err := os.ReadFile(strings.TrimSuffix(f, ".log") + ".options.json"); err == nil {
			var o struct {
				LogFormat string            `json:"log_format"`
				Fields    []string          `json:"fields"`
				FieldMap  map[string]string `json:"field_map"`
			}
			if err := json.Unmarshal(ob, &o); err != nil {
				t.Fatal(err)
			}
			if o.LogFormat != "" {
				args = append(args, "-log-format", o.LogFormat)
			}
			if len(o.Fields) > 0 {
				args = append(args, "-fields", strings.Join(o.Fields, ","))
			}
			var pairs []string
			for k, v := range o.FieldMap {
				pairs = append(pairs, k+"="+v)
			}
			if len(pairs) > 0 {
				args = append(args, "-field-map", strings.Join(pairs, ","))
			}
		}
		for _, mode := range [][]string{{"-json"}, nil} {
			var stdout, stderr bytes.Buffer
			cmdCheck(context.Background(), append(append(append([]string(nil), args...), mode...), f), &stdout, &stderr)
			if !strings.Contains(stderr.String(), "rejected: ") || stdout.Len() == 0 {
				t.Errorf("%s %v: the corpus gave no rows or no rejections:\n%.300s", f, mode, stderr.String())
			}
			out := strings.ToLower(stdout.String() + stderr.String())
			for _, s := range secrets {
				// Whole, or its first 10 characters (a value cut short).
				if strings.Contains(out, strings.ToLower(s[:min(len(s), 10)])) {
					t.Errorf("%s %v: %q in clear in the output", filepath.Base(f), mode, s)
				}
			}
		}
	}
}
