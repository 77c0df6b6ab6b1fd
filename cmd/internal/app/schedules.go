package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/logpipe/logpipe/chclient"
	"github.com/logpipe/logpipe/config"
	"github.com/logpipe/logpipe/schedule"
)

// ParseSchedules builds the configured schedules. Its error names every
// invalid field by its path (config: schedules[1].cron: ...), joined.
func ParseSchedules(cs []config.JobSchedule) ([]*schedule.Schedule, error) {
	var out []*schedule.Schedule
	var errs []error
	for i, c := range cs {
		bad := func(field string, err error) { errs = append(errs, fmt.Errorf("schedules[%d].%s: %w", i, field, err)) }
		n := len(errs)
		loc := time.UTC
		if c.Timezone != "" {
			if l, err := time.LoadLocation(c.Timezone); err != nil {
				bad("timezone", err)
			} else {
				loc = l
			}
		}
		if c.Calendar != "" && c.Calendar != "all" && c.Calendar != "business-days" {
			bad("calendar", fmt.Errorf("%q is neither all nor business-days", c.Calendar))
		}
		s := &schedule.Schedule{Job: c.Job, Spec: c.Cron, Location: loc, BusinessDays: c.Calendar == "business-days", Holidays: map[string]bool{}, Grace: c.Grace, Expected: c.Expected}
		if s.Grace == 0 {
			s.Grace = 10 * time.Minute
		}
		for _, h := range c.Holidays {
			if _, err := time.Parse("2006-01-02", h); err != nil {
				bad("holidays", fmt.Errorf("%q is not a date (2006-01-02)", h))
			}
			s.Holidays[h] = true
		}
		if c.Job == "" {
			bad("job", errors.New("a job name is required"))
		}
		if err := s.Parse(); err != nil {
			bad("cron", err)
		}
		if len(errs) == n {
			out = append(out, s)
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("config: %w", errors.Join(errs...))
	}
	return out, nil
}

// SyncSchedules writes the schedules and their expected runs in
// [from, to). job_expected_runs is a ReplacingMergeTree, so syncing the same
// window twice stores each expected run once.
func SyncSchedules(ctx context.Context, conn *chclient.Conn, scheds []*schedule.Schedule, cs []config.JobSchedule, from, to time.Time) (int, error) {
	n := 0
	for i, s := range scheds {
		cal := "all"
		if s.BusinessDays {
			cal = "business-days"
		}
		q := fmt.Sprintf("INSERT INTO job_schedules (job, schedule, timezone, calendar, grace_s, expected_s, updated_at) SELECT %s, %s, %s, %s, %d, %d, now()",
			chclient.String(s.Job), chclient.String(s.Spec), chclient.String(s.Location.String()), chclient.String(cal), int(s.Grace.Seconds()), int(cs[i].Expected.Seconds()))
		if err := conn.Exec(ctx, q); err != nil {
			return n, fmt.Errorf("schedules: job %s: %w", s.Job, err)
		}
		times := s.Expand(from, to)
		for len(times) > 0 {
			chunk := times[:min(len(times), 5000)]
			times = times[len(chunk):]
			secs := make([]string, len(chunk))
			for j, t := range chunk {
				secs[j] = fmt.Sprint(t.Unix())
			}
			q := fmt.Sprintf("INSERT INTO job_expected_runs (job, expected_time, grace_s) SELECT %s, toDateTime(arrayJoin([%s])), %d",
				chclient.String(s.Job), strings.Join(secs, ","), int(s.Grace.Seconds()))
			if err := conn.Exec(ctx, q); err != nil {
				return n, fmt.Errorf("schedules: job %s: %w", s.Job, err)
			}
			n += len(chunk)
		}
	}
	return n, nil
}
