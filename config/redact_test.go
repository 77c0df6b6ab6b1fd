package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRedactSection(t *testing.T) {
	for _, tt := range []struct {
		name, yaml, wantErr string
	}{
		{"valid", "redact:\n  secret_params: [token, otp]\n  patterns:\n    - {name: member_id, regexp: 'M[0-9]{10}', hash: true}\n  dead_letter_raw: none\n", ""},
		{"bad mode", "redact: {dead_letter_raw: nothing}\n", "redact.dead_letter_raw"},
		{"bad regexp", "redact:\n  patterns: [{name: x, regexp: '('}]\n", "redact.patterns[0].regexp"},
		{"bad name", "redact:\n  patterns: [{name: 'a b', regexp: 'x'}]\n", "redact.patterns[0].name"},
		{"empty regexp", "redact:\n  patterns: [{name: ok, regexp: 'x'}, {name: y, regexp: ''}]\n", "redact.patterns[1].regexp: an empty regular expression"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "c.yaml")
			os.WriteFile(p, []byte(valid+tt.yaml), 0o600)
			c, err := Load(p, nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Redact.DeadLetterRaw != "none" || len(c.Redact.Patterns) != 1 || !c.Redact.Patterns[0].Hash || strings.Join(c.Redact.SecretParams, ",") != "token,otp" {
				t.Errorf("redact section not read: %+v", c.Redact)
			}
		})
	}
}
