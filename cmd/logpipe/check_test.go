package main

import (
	"bytes"
	"compress/gzip"
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
			// Origin logs without a cache status are fine here: what is
			// checked is the parse (TestCheckRefusesMissingCacheStatus
			// checks the refusal).
			args := []string{"-format", format, "-allow-missing"}
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
			if want := fmt.Sprintf("%d lines parsed, %d rejected, ", ok, bad); !strings.HasPrefix(lastLine(stderr.String()), want) {
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

// TestCheckReadsGzip: CloudFront delivers standard logs gzipped.
func TestCheckReadsGzip(t *testing.T) {
	plain, err := os.ReadFile("../../transform/testdata/cloudfront-realtime/default.log")
	if err != nil {
		t.Fatal(err)
	}
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(plain)
	zw.Close()
	name := filepath.Join(t.TempDir(), "E1ABCDEF2GHIJK.2017-06-15-09.gz")
	if err := os.WriteFile(name, z.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	err = cmdCheck(context.Background(), []string{"-format", "cloudfront-realtime", name}, &stdout, &stderr)
	if err == nil || !strings.Contains(stderr.String(), "3 lines parsed, 2 rejected, ") {
		t.Fatalf("check on gzip: %v; stderr:\n%s", err, stderr.String())
	}
}

// customFastly has a user's own Fastly JSON keys (issue 17).
const customFastly = `{"timestamp":"2017-06-15T09:41:07Z","client_ip":"203.0.113.24","host":"www.example.jp","url":"/mypage/?tab=orders","request_method":"GET","cache_status":"HIT-WAIT","response_status":200,"response_bytes":18342,"time_elapsed":12,"response_cache_control":"no-cache","response_set_cookie":"sid=1","request_cookie":"session_id=9f8e7d6c5b4a"}
{"timestamp":"2017-06-15T09:41:08Z","client_ip":"203.0.113.25","host":"www.example.jp","url":"/items/123","request_method":"GET","cache_status":"MISS","response_status":200,"response_bytes":"1834","time_elapsed":40,"response_cache_control":"max-age=60","response_set_cookie":"(null)","request_cookie":"(null)"}

`

// TestCheckRefusesMissingCacheStatus: a log whose cache status no field
// reads is refused, with the reason and the mapping to use; one
// -field-map later (given after the file argument) every field is found.
func TestCheckRefusesMissingCacheStatus(t *testing.T) {
	name := filepath.Join(t.TempDir(), "custom.log")
	if err := os.WriteFile(name, []byte(customFastly), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	err := cmdCheck(context.Background(), []string{"-format", "fastly-json", name}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "cache_status found in no line") || !strings.Contains(err.Error(), "-field-map cache_status=cache_status (suggested)") {
		t.Fatalf("check on a log without cache status: err = %v; stderr:\n%s", err, stderr.String())
	}
	for _, want := range []string{
		"cache_status    0/2",
		"suggested: -field-map cache_status=cache_status",
		"suggested: -field-map bytes=response_bytes",
		"suggested: -field-map duration=time_elapsed",
		"2 lines parsed, 0 rejected, 1 skipped",
	} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}

	stdout.Reset()
	stderr.Reset()
	err = cmdCheck(context.Background(), []string{"-format", "fastly-json", name, "-json", "-field-map", "cache_status=cache_status,bytes=response_bytes,duration=time_elapsed:ms"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("check with field map: %v; stderr:\n%s", err, stderr.String())
	}
	for _, want := range []string{"cache_status    2/2", "bytes           2/2"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
	if strings.Contains(stderr.String(), "keys no field reads") {
		t.Errorf("keys left unread after mapping:\n%s", stderr.String())
	}
	var row map[string]any
	if err := json.Unmarshal([]byte(strings.SplitN(stdout.String(), "\n", 2)[0]), &row); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"cache_status": "hit", "cache_status_raw": "HIT-WAIT", "set_cookie": 1.0, "time_ms": 1497519667000.0, "duration_ms": 12.0, "bytes_sent": 18342.0, "path_template": "/mypage/", "time": "2017-06-15 09:41:07"}
	for k, v := range want {
		if row[k] != v {
			t.Errorf("row[%s] = %v, want %v (row %v)", k, row[k], v, row)
		}
	}
	if _, ok := row["Secret"]; ok {
		t.Errorf("row has Go field names: %v", row)
	}
}

// TestCheckWithConfig: check -config uses the file's stream options
// (field_map), path classes, path templates and session cookie names.
func TestCheckWithConfig(t *testing.T) {
	dir := t.TempDir()
	logFile := filepath.Join(dir, "custom.log")
	if err := os.WriteFile(logFile, []byte(customFastly), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "logpipe.yaml")
	cfg := `
streams:
  - {name: jobs, topic: jobs, format: logpipe-job}
  - name: cdn
    topic: cdn
    format: fastly-json
    field_map: {cache_status: cache_status, bytes: response_bytes, duration: "time_elapsed:ms"}
enrich:
  session_cookies: [session_id]
  path_classes:
    - {class: members, patterns: ["/items/*"]}
  path_templates:
    - {match: '^/mypage/$', replace: '/me/'}
`
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if err := cmdCheck(context.Background(), []string{"-config", cfgFile, "-stream", "cdn", "-json", logFile}, &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	rows := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(rows) != 2 {
		t.Fatalf("%d rows:\n%s", len(rows), stdout.String())
	}
	var first, second map[string]any
	json.Unmarshal([]byte(rows[0]), &first)
	json.Unmarshal([]byte(rows[1]), &second)
	if first["path_template"] != "/me/" || first["has_session_cookie"] != 1.0 || first["cache_status"] != "hit" {
		t.Errorf("first row: %v", first)
	}
	if second["path_class"] != "members" {
		t.Errorf("second row: %v", second)
	}
	// Two streams and no -stream: the user is asked to pick one.
	err := cmdCheck(context.Background(), []string{"-config", cfgFile, logFile}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "pick one with -stream") {
		t.Errorf("err = %v", err)
	}
}
