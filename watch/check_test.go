package watch_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/logpipe/logpipe/config"
	"github.com/logpipe/logpipe/watch"
)

// TestCheckReportsEveryChannelAndTheRules: Check lists each bad channel
// and the first bad rule (with the catalogue's nearest name), which New
// refuses one at a time; without readFiles a url_file is not read.
func TestCheckReportsEveryChannelAndTheRules(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-url")
	cfg := config.Watch{
		Channels: []config.WatchChannel{
			{Name: "ops", Type: "teams", URL: "https://example.invalid/hook"},
			{Name: "", URL: "https://example.invalid/hook"},
			{Name: "pager", URLFile: missing},
		},
		Rules: []config.WatchRule{{Name: "personal_cache_hit", Channels: []string{"ops"}}},
	}
	want := []string{
		`watch.channels[0].type: "teams" is neither webhook nor slack`,
		`watch.channels[1].name: a channel name is required`,
		`watch.channels[2].url_file: open ` + missing,
		`watch.rules[0].query: no query "personal_cache_hit" in the catalogue`,
	}
	errs := watch.Check(cfg, true)
	if len(errs) != len(want) {
		t.Fatalf("Check = %d errors, want %d: %v", len(errs), len(want), errs)
	}
	for i, w := range want {
		if !strings.HasPrefix(errs[i].Error(), w) {
			t.Errorf("error %d = %q, want it to start %q", i, errs[i], w)
		}
	}
	if !strings.HasSuffix(errs[3].Error(), "(did you mean personal_cache_hits?)") {
		t.Errorf("rule error without the nearest query: %v", errs[3])
	}

	errs = watch.Check(cfg, false)
	if len(errs) != len(want)-1 || strings.Contains(errs[2].Error(), "url_file") {
		t.Errorf("Check without reading files = %v, want the url_file error left out", errs)
	}
	// New refuses what Check reports.
	if _, err := watch.New(nil, cfg, nil, nil); err == nil || !strings.HasPrefix(err.Error(), want[0]) {
		t.Errorf("New = %v, want %q", err, want[0])
	}
	if errs := watch.Check(config.Watch{}, true); len(errs) != 0 {
		t.Errorf("Check of the default watch config = %v", errs)
	}
}
