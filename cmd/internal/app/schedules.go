package app

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/logpipe/logpipe/chclient"
	"github.com/logpipe/logpipe/config"
	"github.com/logpipe/logpipe/schedule"
)

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
