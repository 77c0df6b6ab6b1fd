// Package schedule expands job schedules (5-field cron expressions or
// "@every <duration>", with an optional business-day calendar) into the
// times runs are expected, so that ClickHouse can tell missed runs: SQL
// cannot read cron.
package schedule

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/logpipe/logpipe/config"
)

// Schedule is one job's schedule.
type Schedule struct {
	Job      string
	Spec     string         // "*/15 * * * *", "0 2 * * 1-5", "@every 15m", "@hourly", "@daily"
	Location *time.Location // the zone the cron fields are read in; nil = UTC
	// BusinessDays keeps only Monday..Friday that are not Holidays.
	BusinessDays bool
	Holidays     map[string]bool // "2026-12-31" in Location
	Grace        time.Duration   // allowed start delay
	Expected     time.Duration   // expected duration, 0 = unknown

	every time.Duration
	cron  *cron
}

type cron struct {
	minute, hour, dom, month, dow uint64 // bit sets
	domStar, dowStar              bool
}

// FromConfig builds the configured schedules. Its error names every
// invalid field by its path (config: schedules[1].cron: ...), joined.
func FromConfig(cs []config.JobSchedule) ([]*Schedule, error) {
	var out []*Schedule
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
		s := &Schedule{Job: c.Job, Spec: c.Cron, Location: loc, BusinessDays: c.Calendar == "business-days", Holidays: map[string]bool{}, Grace: c.Grace, Expected: c.Expected}
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

// Parse checks s.Spec and prepares s for Expand.
func (s *Schedule) Parse() error {
	if s.Location == nil {
		s.Location = time.UTC
	}
	spec := strings.TrimSpace(s.Spec)
	switch spec {
	case "@hourly":
		spec = "0 * * * *"
	case "@daily", "@midnight":
		spec = "0 0 * * *"
	case "@weekly":
		spec = "0 0 * * 0"
	case "@monthly":
		spec = "0 0 1 * *"
	}
	if rest, ok := strings.CutPrefix(spec, "@every "); ok {
		d, err := config.ParseDuration(strings.TrimSpace(rest))
		if err != nil || d < time.Minute {
			return fmt.Errorf("schedule %s: %q: @every needs a duration of at least 1m", s.Job, s.Spec)
		}
		s.every = d
		return nil
	}
	f := strings.Fields(spec)
	if len(f) != 5 {
		return fmt.Errorf("schedule %s: %q: want 5 cron fields (minute hour day-of-month month day-of-week) or @every <duration>", s.Job, s.Spec)
	}
	c := &cron{}
	var err error
	names := []struct {
		dst      *uint64
		lo, hi   int
		field    string
		star     *bool
		aliasMap map[string]int
	}{
		{&c.minute, 0, 59, "minute", nil, nil},
		{&c.hour, 0, 23, "hour", nil, nil},
		{&c.dom, 1, 31, "day-of-month", &c.domStar, nil},
		{&c.month, 1, 12, "month", nil, months},
		{&c.dow, 0, 7, "day-of-week", &c.dowStar, weekdays},
	}
	for i, n := range names {
		*n.dst, err = parseField(f[i], n.lo, n.hi, n.aliasMap)
		if err != nil {
			return fmt.Errorf("schedule %s: %q: %s field: %w", s.Job, s.Spec, n.field, err)
		}
		if n.star != nil {
			*n.star = f[i] == "*" || strings.HasPrefix(f[i], "*/")
		}
	}
	if c.dow&(1<<7) != 0 { // 7 is Sunday too
		c.dow |= 1
	}
	s.cron = c
	return nil
}

var (
	months   = map[string]int{"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12}
	weekdays = map[string]int{"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
)

func parseField(f string, lo, hi int, aliases map[string]int) (uint64, error) {
	var set uint64
	for _, part := range strings.Split(f, ",") {
		step := 1
		if r, s, ok := strings.Cut(part, "/"); ok {
			n, err := strconv.Atoi(s)
			if err != nil || n <= 0 {
				return 0, fmt.Errorf("bad step %q", s)
			}
			part, step = r, n
		}
		a, b := lo, hi
		if part != "*" {
			x, y, isRange := strings.Cut(part, "-")
			var err error
			if a, err = value(x, aliases); err != nil {
				return 0, err
			}
			b = a
			if isRange {
				if b, err = value(y, aliases); err != nil {
					return 0, err
				}
			} else if step > 1 {
				b = hi
			}
		}
		if a < lo || b > hi || a > b {
			return 0, fmt.Errorf("%q is outside %d-%d", part, lo, hi)
		}
		for v := a; v <= b; v += step {
			set |= 1 << v
		}
	}
	return set, nil
}

func value(s string, aliases map[string]int) (int, error) {
	if v, ok := aliases[strings.ToLower(s)]; ok {
		return v, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	return n, nil
}

// Expand returns the expected run times in [from, to), in UTC.
func (s *Schedule) Expand(from, to time.Time) []time.Time {
	var out []time.Time
	if s.every > 0 {
		for t := from.Truncate(s.every); t.Before(to); t = t.Add(s.every) {
			if !t.Before(from) && s.dayOK(t) {
				out = append(out, t.UTC())
			}
		}
		return out
	}
	if s.cron == nil {
		return nil
	}
	t := from.In(s.Location).Truncate(time.Minute)
	if t.Before(from) {
		t = t.Add(time.Minute)
	}
	for ; t.Before(to); t = t.Add(time.Minute) {
		if s.cron.match(t) && s.dayOK(t) {
			out = append(out, t.UTC())
		}
	}
	return out
}

func (c *cron) match(t time.Time) bool {
	if c.minute&(1<<t.Minute()) == 0 || c.hour&(1<<t.Hour()) == 0 || c.month&(1<<int(t.Month())) == 0 {
		return false
	}
	dom := c.dom&(1<<t.Day()) != 0
	dow := c.dow&(1<<int(t.Weekday())) != 0
	if c.domStar || c.dowStar {
		return dom && dow
	}
	return dom || dow // cron: when both day fields are restricted, either may match
}

func (s *Schedule) dayOK(t time.Time) bool {
	if !s.BusinessDays {
		return true
	}
	lt := t.In(s.Location)
	if lt.Weekday() == time.Saturday || lt.Weekday() == time.Sunday {
		return false
	}
	return !s.Holidays[lt.Format("2006-01-02")]
}
