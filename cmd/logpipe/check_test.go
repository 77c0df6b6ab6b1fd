package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckEveryFormat runs `logpipe check` on every golden input of
// transform/testdata and expects the golden file's counts of parsed and
// rejected lines, with each rejected line named on stderr.
func TestCheckEveryFormat(t *testing.T) {
	logs, err := filepath.Glob("../../transform/testdata/*/*.log")
	if err != nil || len(logs) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	for _, logFile := range logs {
		format := filepath.Base(filepath.Dir(logFile))
		t.Run(format+"/"+filepath.Base(logFile), func(t *testing.T) {
			args := []string{"-format", format}
			if b, err := os.ReadFile(strings.TrimSuffix(logFile, ".log") + ".options.json"); err == nil {
				var o struct {
					LogFormat string            `json:"log_format"`
					Fields    []string          `json:"fields"`
					FieldMap  map[string]string `json:"field_map"`
				}
				if err := json.Unmarshal(b, &o); err != nil {
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
			var rows []struct {
				Line  int    `json:"line"`
				Error string `json:"error"`
				Skip  bool   `json:"skip"`
			}
			b, err := os.ReadFile(strings.TrimSuffix(logFile, ".log") + ".golden")
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &rows); err != nil {
				t.Fatal(err)
			}
			ok, bad := 0, 0
			for _, r := range rows {
				switch {
				case r.Skip:
				case r.Error != "":
					bad++
				default:
					ok++
				}
			}
			var stdout, stderr bytes.Buffer
			err = cmdCheck(context.Background(), append(args, "-json", logFile), &stdout, &stderr)
			if (err != nil) != (bad > 0) {
				t.Fatalf("check returned %v with %d rejected lines expected; stderr:\n%s", err, bad, stderr.String())
			}
			if want := fmt.Sprintf("%d lines parsed, %d rejected\n", ok, bad); !strings.HasSuffix(stderr.String(), want) {
				t.Errorf("stderr ends %q, want %q", lastLine(stderr.String()), want)
			}
			if n := strings.Count(stdout.String(), "\n"); n != ok {
				t.Errorf("%d JSON rows printed, want %d", n, ok)
			}
			for _, r := range rows {
				if r.Error != "" && !strings.Contains(stderr.String(), fmt.Sprintf("line %d: rejected: %s\n", r.Line, r.Error)) {
					t.Errorf("stderr does not name line %d: %s", r.Line, r.Error)
				}
			}
			if strings.Contains(stdout.String(), "203.0.113.24") || strings.Contains(stdout.String(), "9f8e7d6c5b4a") {
				t.Errorf("a client address or session cookie reached the output in clear:\n%s", stdout.String())
			}
		})
	}
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	return s[strings.LastIndexByte(s, '\n')+1:]
}
