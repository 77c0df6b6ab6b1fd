package schedule

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/logpipe/logpipe/config"
)

func TestExpand(t *testing.T) {
	tokyo, _ := time.LoadLocation("Asia/Tokyo")
	from := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC) // a Friday
	day := 24 * time.Hour
	tests := []struct {
		name string
		s    Schedule
		span time.Duration
		want string // first..last and count
	}{
		{"every 15 minutes", Schedule{Spec: "*/15 * * * *"}, 2 * time.Hour, "8: 2026-11-20T00:00:00Z .. 2026-11-20T01:45:00Z"},
		{"@every 90m", Schedule{Spec: "@every 90m"}, 6 * time.Hour, "4: 2026-11-20T00:00:00Z .. 2026-11-20T04:30:00Z"},
		{"business days 02:00", Schedule{Spec: "0 2 * * *", BusinessDays: true, Holidays: map[string]bool{"2026-11-23": true}}, 7 * day,
			"4: 2026-11-20T02:00:00Z .. 2026-11-26T02:00:00Z"}, // Fri, (Sat, Sun, Mon holiday skipped) Tue, Wed, Thu
		{"weekdays by range", Schedule{Spec: "30 9 * * mon-fri"}, 7 * day, "5: 2026-11-20T09:30:00Z .. 2026-11-26T09:30:00Z"},
		{"zone: 09:00 in Tokyo", Schedule{Spec: "0 9 * * *", Location: tokyo}, 2 * day, "2: 2026-11-20T00:00:00Z .. 2026-11-21T00:00:00Z"},
		{"list and step", Schedule{Spec: "0 0,12 */10 * *"}, 30 * day, "6: 2026-11-21T00:00:00Z .. 2026-12-11T12:00:00Z"},
		{"Sunday as 7", Schedule{Spec: "0 0 * * 7"}, 7 * day, "1: 2026-11-22T00:00:00Z .. 2026-11-22T00:00:00Z"},
		{"@daily", Schedule{Spec: "@daily"}, 3 * day, "3: 2026-11-20T00:00:00Z .. 2026-11-22T00:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.s
			if err := s.Parse(); err != nil {
				t.Fatal(err)
			}
			got := s.Expand(from, from.Add(tt.span))
			if len(got) == 0 {
				t.Fatalf("no times")
			}
			desc := strings.Join([]string{strconv.Itoa(len(got)) + ": " + got[0].Format(time.RFC3339), got[len(got)-1].Format(time.RFC3339)}, " .. ")
			if desc != tt.want {
				t.Errorf("Expand = %s, want %s", desc, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, spec := range []string{"", "* * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "*/0 * * * *", "@every 10s", "@every soon", "a * * * *", "5-1 * * * *"} {
		s := Schedule{Job: "j", Spec: spec}
		if err := s.Parse(); err == nil {
			t.Errorf("Parse(%q) accepted", spec)
		} else if !strings.Contains(err.Error(), "schedule j") {
			t.Errorf("Parse(%q) error %q does not name the job", spec, err)
		}
	}
}

// TestFromConfigReportsEveryField: each invalid field of each schedule is
// named by its path; valid schedules get the default grace.
func TestFromConfigReportsEveryField(t *testing.T) {
	ss, err := FromConfig([]config.JobSchedule{{Job: "a", Cron: "@hourly", Timezone: "Asia/Tokyo"}})
	if err != nil || len(ss) != 1 || ss[0].Grace != 10*time.Minute || ss[0].Location.String() != "Asia/Tokyo" {
		t.Fatalf("FromConfig = %+v, %v", ss, err)
	}
	_, err = FromConfig([]config.JobSchedule{
		{Job: "a", Cron: "0 0 * * *", Timezone: "Mars/Olympus", Holidays: []string{"2026-13-01"}},
		{Cron: "61 * * * *", Calendar: "weekends"},
	})
	want := []string{
		"config: schedules[0].timezone: unknown time zone Mars/Olympus",
		`schedules[0].holidays: "2026-13-01" is not a date (2006-01-02)`,
		`schedules[1].calendar: "weekends" is neither all nor business-days`,
		"schedules[1].job: a job name is required",
		"schedules[1].cron: ",
	}
	if err == nil {
		t.Fatal("FromConfig accepted invalid schedules")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want) {
		t.Fatalf("FromConfig error has %d lines, want %d:\n%v", len(lines), len(want), err)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d = %q, want it to start %q", i, lines[i], w)
		}
	}
}
