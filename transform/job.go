package transform

import (
	"bytes"
	"fmt"
	"time"

	json "github.com/goccy/go-json"
)

// jobEventJSON is the documented logpipe job event (docs/formats.md).
type jobEventJSON struct {
	Time          json.RawMessage            `json:"time"`
	Job           string                     `json:"job"`
	RunID         json.RawMessage            `json:"run_id"`
	Event         string                     `json:"event"`
	ScheduledTime json.RawMessage            `json:"scheduled_time"`
	Attempt       *float64                   `json:"attempt"`
	Host          string                     `json:"host"`
	Step          string                     `json:"step"`
	Status        string                     `json:"status"`
	DurationMs    *float64                   `json:"duration_ms"`
	ExitCode      *float64                   `json:"exit_code"`
	Error         string                     `json:"error"`
	ErrorClass    string                     `json:"error_class"`
	Level         string                     `json:"level"`
	Message       string                     `json:"message"`
	Counters      map[string]float64         `json:"counters"`
	Labels        map[string]json.RawMessage `json:"labels"`
}

// JobJSON parses the documented logpipe job event, one JSON object a line.
type JobJSON struct{}

// Kind implements Parser.
func (JobJSON) Kind() Kind { return KindJob }

// Parse implements JobParser.
func (JobJSON) Parse(line []byte, e *JobEvent) error {
	var j jobEventJSON
	if err := json.Unmarshal(line, &j); err != nil {
		return fmt.Errorf("job event is not a JSON object: %w", err)
	}
	if j.Job == "" {
		return fmt.Errorf("job event has no \"job\"")
	}
	runID, err := scalarString(j.RunID)
	if err != nil || runID == "" {
		return fmt.Errorf("job event has no \"run_id\"")
	}
	if len(j.Time) == 0 {
		return fmt.Errorf("job event has no \"time\"")
	}
	t, err := rawTime(j.Time)
	if err != nil {
		return fmt.Errorf("job event \"time\": %w", err)
	}
	if !validEvent(j.Event) {
		return fmt.Errorf("job event \"event\" %q is not one of started, heartbeat, step, finished, failed, log", truncate(j.Event, 32))
	}
	e.Time = t
	e.Job = j.Job
	e.RunID = runID
	e.Event = j.Event
	if len(j.ScheduledTime) > 0 && string(j.ScheduledTime) != "null" && string(j.ScheduledTime) != `""` {
		st, err := rawTime(j.ScheduledTime)
		if err != nil {
			return fmt.Errorf("job event \"scheduled_time\": %w", err)
		}
		e.ScheduledTime = st
	}
	e.Attempt = 1
	if j.Attempt != nil {
		if *j.Attempt < 0 || *j.Attempt > 65535 {
			return fmt.Errorf("job event \"attempt\" %v out of range", *j.Attempt)
		}
		e.Attempt = uint16(*j.Attempt)
	}
	e.Host = j.Host
	e.Step = j.Step
	e.StepStatus = j.Status
	if j.DurationMs != nil {
		e.DurationMs = *j.DurationMs
	}
	if j.ExitCode != nil {
		e.ExitCode = int32(*j.ExitCode)
		e.HasExitCode = true
	}
	e.Error = j.Error
	e.ErrorClass = j.ErrorClass
	e.Level = j.Level
	e.Message = j.Message
	for _, k := range sortedKeys(j.Counters) {
		e.CounterNames = append(e.CounterNames, k)
		e.CounterValues = append(e.CounterValues, j.Counters[k])
	}
	for _, k := range sortedKeys(j.Labels) {
		v, err := scalarString(j.Labels[k])
		if err != nil {
			return fmt.Errorf("job event label %q: %w", k, err)
		}
		e.LabelKeys = append(e.LabelKeys, k)
		e.LabelValues = append(e.LabelValues, v)
	}
	return nil
}

func validEvent(s string) bool {
	switch s {
	case EventStarted, EventHeartbeat, EventStep, EventFinished, EventFailed, EventLog:
		return true
	}
	return false
}

// rawTime reads a JSON string or number as a time.
func rawTime(raw json.RawMessage) (time.Time, error) {
	s, err := scalarString(raw)
	if err != nil {
		return time.Time{}, err
	}
	return ParseTime(s)
}

// scalarString returns a JSON string's value, or a number's or boolean's
// text; null and absent give "".
func scalarString(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	switch raw[0] {
	case '"':
		if len(raw) >= 2 && raw[len(raw)-1] == '"' && bytes.IndexByte(raw, '\\') < 0 {
			// No escapes, the common case: alias the line (never modified
			// while the record is in use) instead of copying.
			return unsafeString(raw[1 : len(raw)-1]), nil
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", err
		}
		return s, nil
	case '{', '[':
		return "", fmt.Errorf("want a string or number, got %s", truncate(string(raw), 32))
	}
	return unsafeString(raw), nil // raw aliases the line, which is never modified
}
