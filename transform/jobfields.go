package transform

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	json "github.com/goccy/go-json"
)

// jobFieldDefaults are the keys job-json and job-logfmt look for, per
// logpipe field, in order: what slog, zap, logrus, structlog and logback's
// JSON encoder write, plus logpipe's own names. A field_map entry
// replaces the list for its field with the one key given.
var jobFieldDefaults = [...]struct {
	name string
	keys []string
}{
	{"time", []string{"time", "ts", "@timestamp", "timestamp"}},
	{"job", []string{"job"}},
	{"run_id", []string{"run_id"}},
	{"event", []string{"event"}},
	{"scheduled_time", []string{"scheduled_time"}},
	{"attempt", []string{"attempt"}},
	{"host", []string{"host", "hostname", "HOSTNAME"}},
	{"step", []string{"step"}},
	{"status", []string{"status"}},
	{"duration_ms", []string{"duration_ms"}},
	{"exit_code", []string{"exit_code"}},
	{"error", []string{"error", "err", "exception", "stack_trace"}},
	{"error_class", []string{"error_class"}},
	{"level", []string{"level", "severity", "lvl", "log.level"}},
	{"message", []string{"msg", "message"}},
}

const (
	jfTime = iota
	jfJob
	jfRunID
	jfEvent
	jfScheduled
	jfAttempt
	jfHost
	jfStep
	jfStatus
	jfDuration
	jfExitCode
	jfError
	jfErrorClass
	jfLevel
	jfMessage
	jfCount
)

// jobNoise are logger bookkeeping keys not worth a label.
func jobNoise(k string) bool {
	switch k {
	case "@version", "level_value", "levelno":
		return true
	}
	return false
}

// JobFields parses job logs written by general-purpose loggers: JSON
// objects (format "job-json"; nested objects are flattened to dotted
// keys, so slog groups work) or logfmt lines (format "job-logfmt").
// Keys that are not mapped to a logpipe field are kept: numbers as
// counters, other values as labels. A line whose event key is missing
// becomes event "log".
type JobFields struct {
	keys   [jfCount][]string
	logfmt bool
}

// JobFieldNames lists the logpipe names a field map may use.
func JobFieldNames() []string {
	names := make([]string, len(jobFieldDefaults))
	for i, d := range jobFieldDefaults {
		names[i] = d.name
	}
	return names
}

// NewJobFields returns a job-json (logfmt false) or job-logfmt parser.
// fieldMap maps logpipe field names (job, run_id, event, exit_code, ...;
// JobFieldNames) to the user's keys.
func NewJobFields(fieldMap map[string]string, logfmt bool) (*JobFields, error) {
	p := &JobFields{logfmt: logfmt}
	for i, d := range jobFieldDefaults {
		p.keys[i] = d.keys
	}
	for _, name := range sortedKeys(fieldMap) {
		key := fieldMap[name]
		i := -1
		for j, d := range jobFieldDefaults {
			if d.name == name {
				i = j
			}
		}
		if i < 0 {
			return nil, fmt.Errorf("field_map: unknown field %q (known: %s)", name, strings.Join(JobFieldNames(), ", "))
		}
		if key == "" {
			return nil, fmt.Errorf("field_map: field %q has an empty key", name)
		}
		p.keys[i] = []string{key}
	}
	return p, nil
}

// Kind implements Parser.
func (*JobFields) Kind() Kind { return KindJob }

// jobKV is one key and its value as text.
type jobKV struct {
	key, val string
	num      bool
	used     bool
}

func (p *JobFields) what() string {
	if p.logfmt {
		return "job-logfmt"
	}
	return "job-json"
}

// Parse implements JobParser.
func (p *JobFields) Parse(line []byte, e *JobEvent) error {
	var kvs []jobKV
	var err error
	if p.logfmt {
		kvs, err = parseLogfmt(string(line))
	} else {
		kvs, err = flattenJSON(line)
	}
	if err != nil {
		return fmt.Errorf("%s line: %w", p.what(), err)
	}
	sort.SliceStable(kvs, func(i, j int) bool { return kvs[i].key < kvs[j].key })
	var got [jfCount]*jobKV
	for f := range got {
		for _, k := range p.keys[f] {
			i := sort.Search(len(kvs), func(i int) bool { return kvs[i].key >= k })
			if i < len(kvs) && kvs[i].key == k && !kvs[i].used {
				kvs[i].used = true
				got[f] = &kvs[i]
				break
			}
		}
	}
	val := func(f int) string {
		if got[f] == nil {
			return ""
		}
		return got[f].val
	}
	missing := func(f int) error {
		return fmt.Errorf("%s line has no %s (looked for %s; set the stream's field_map.%s)", p.what(), jobFieldDefaults[f].name, quoteList(p.keys[f]), jobFieldDefaults[f].name)
	}
	if val(jfTime) == "" {
		return missing(jfTime)
	}
	t, err := ParseTime(val(jfTime))
	if err != nil {
		return fmt.Errorf("%s %s: %w", p.what(), got[jfTime].key, err)
	}
	if val(jfJob) == "" {
		return missing(jfJob)
	}
	if val(jfRunID) == "" {
		return missing(jfRunID)
	}
	e.Time = t
	e.Job = val(jfJob)
	e.RunID = val(jfRunID)
	e.Message = val(jfMessage)
	e.Event = EventLog
	if ev := val(jfEvent); ev != "" {
		if kind, ok := eventKind(ev); ok {
			e.Event = kind
		} else if e.Message == "" {
			e.Message = ev // structlog writes the message under "event"
		} else {
			got[jfEvent].used = false // keep it as a label
		}
	}
	if v := val(jfScheduled); v != "" {
		st, err := ParseTime(v)
		if err != nil {
			return fmt.Errorf("%s %s: %w", p.what(), got[jfScheduled].key, err)
		}
		e.ScheduledTime = st
	}
	e.Attempt = 1
	if v := val(jfAttempt); v != "" {
		n, err := strconv.ParseUint(v, 10, 16)
		if err != nil {
			return fmt.Errorf("%s %s %q is not an attempt number (1-65535)", p.what(), got[jfAttempt].key, truncate(v, 16))
		}
		e.Attempt = uint16(n)
	}
	e.Host = val(jfHost)
	e.Step = val(jfStep)
	e.StepStatus = val(jfStatus)
	if v := val(jfDuration); v != "" {
		d, err := strconv.ParseFloat(v, 64)
		if err != nil || d != d {
			return fmt.Errorf("%s %s %q is not a number of milliseconds", p.what(), got[jfDuration].key, truncate(v, 16))
		}
		e.DurationMs = d
	}
	if v := val(jfExitCode); v != "" {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil {
			return fmt.Errorf("%s %s %q is not an exit code", p.what(), got[jfExitCode].key, truncate(v, 16))
		}
		e.ExitCode, e.HasExitCode = int32(n), true
	}
	e.Error = val(jfError)
	e.ErrorClass = val(jfErrorClass)
	e.Level = strings.ToLower(val(jfLevel))
	for i := range kvs {
		kv := &kvs[i]
		if kv.used || jobNoise(kv.key) {
			continue
		}
		if kv.num {
			if f, err := strconv.ParseFloat(kv.val, 64); err == nil && f == f {
				e.CounterNames = append(e.CounterNames, kv.key)
				e.CounterValues = append(e.CounterValues, f)
				continue
			}
		}
		e.LabelKeys = append(e.LabelKeys, kv.key)
		e.LabelValues = append(e.LabelValues, kv.val)
	}
	return nil
}

// eventKind maps an event value to a job event kind, taking the words
// monitors use (Healthchecks start/success/fail, Cronitor
// run/complete/fail) as well as logpipe's own.
func eventKind(v string) (string, bool) {
	switch strings.ToLower(v) {
	case EventStarted, "start", "run", "begin":
		return EventStarted, true
	case EventFinished, "finish", "success", "succeeded", "complete", "completed", "done", "end":
		return EventFinished, true
	case EventFailed, "fail", "failure":
		return EventFailed, true
	case EventHeartbeat, "ping", "tick", "progress":
		return EventHeartbeat, true
	case EventStep:
		return EventStep, true
	case EventLog:
		return EventLog, true
	}
	return "", false
}

func quoteList(keys []string) string {
	q := make([]string, len(keys))
	for i, k := range keys {
		q[i] = strconv.Quote(k)
	}
	return strings.Join(q, ", ")
}

// flattenJSON reads a JSON object into key/value pairs, nested objects
// flattened to dotted keys; arrays are kept as their JSON text.
func flattenJSON(line []byte) ([]jobKV, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(line, &m); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	kvs := make([]jobKV, 0, len(m)+4)
	return flattenInto(kvs, "", m, 0)
}

func flattenInto(kvs []jobKV, prefix string, m map[string]json.RawMessage, depth int) ([]jobKV, error) {
	for k, raw := range m {
		key := prefix + k
		if len(raw) == 0 {
			continue
		}
		switch raw[0] {
		case '{':
			if depth >= 4 {
				kvs = append(kvs, jobKV{key: key, val: string(raw)})
				continue
			}
			var sub map[string]json.RawMessage
			if err := json.Unmarshal(raw, &sub); err != nil {
				return nil, fmt.Errorf("key %q: %w", truncate(key, 32), err)
			}
			var err error
			if kvs, err = flattenInto(kvs, key+".", sub, depth+1); err != nil {
				return nil, err
			}
		case '[':
			kvs = append(kvs, jobKV{key: key, val: string(raw)})
		case '"':
			s, err := scalarString(raw)
			if err != nil {
				return nil, fmt.Errorf("key %q: %w", truncate(key, 32), err)
			}
			kvs = append(kvs, jobKV{key: key, val: s})
		case 'n':
		case 't', 'f':
			kvs = append(kvs, jobKV{key: key, val: string(raw)})
		default:
			kvs = append(kvs, jobKV{key: key, val: string(raw), num: true})
		}
	}
	return kvs, nil
}

// parseLogfmt reads key=value pairs separated by spaces; values may be
// double-quoted with backslash escapes; a bare key means "true".
func parseLogfmt(s string) ([]jobKV, error) {
	kvs := make([]jobKV, 0, 12)
	i := 0
	for i < len(s) {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		if i >= len(s) {
			break
		}
		start := i
		for i < len(s) && s[i] != '=' && s[i] != ' ' && s[i] != '\t' && s[i] != '"' {
			i++
		}
		key := s[start:i]
		if key == "" {
			return nil, fmt.Errorf("byte %d: want a key, have %q", start, truncate(s[start:], 16))
		}
		if i >= len(s) || s[i] != '=' {
			if i < len(s) && s[i] == '"' {
				return nil, fmt.Errorf("byte %d: quote inside key %q", i, truncate(key, 32))
			}
			kvs = append(kvs, jobKV{key: key, val: "true"})
			continue
		}
		i++ // '='
		if i < len(s) && s[i] == '"' {
			var b strings.Builder
			i++
			closed := false
			for i < len(s) {
				c := s[i]
				if c == '"' {
					closed = true
					i++
					break
				}
				if c == '\\' && i+1 < len(s) {
					i++
					switch s[i] {
					case 'n':
						c = '\n'
					case 't':
						c = '\t'
					default:
						c = s[i]
					}
				}
				b.WriteByte(c)
				i++
			}
			if !closed {
				return nil, fmt.Errorf("value of %q: unterminated quote", truncate(key, 32))
			}
			kvs = append(kvs, jobKV{key: key, val: b.String()})
			continue
		}
		vs := i
		for i < len(s) && s[i] != ' ' && s[i] != '\t' {
			i++
		}
		v := s[vs:i]
		_, err := strconv.ParseFloat(v, 64)
		kvs = append(kvs, jobKV{key: key, val: v, num: err == nil && v != ""})
	}
	if len(kvs) == 0 {
		return nil, fmt.Errorf("no key=value pairs")
	}
	return kvs, nil
}
