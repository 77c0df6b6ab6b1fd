package transform

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	json "github.com/goccy/go-json"
)

// k8sObjectRef is the object an Event is about.
type k8sObjectRef struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

// k8sEvent holds the fields of a Kubernetes Event (core/v1 or
// events.k8s.io/v1) that logpipe reads.
type k8sEvent struct {
	InvolvedObject k8sObjectRef `json:"involvedObject"` // core/v1
	Regarding      k8sObjectRef `json:"regarding"`      // events.k8s.io/v1
	Reason         string       `json:"reason"`
	Message        string       `json:"message"`
	Note           string       `json:"note"`
	Type           string       `json:"type"`
	EventTime      string       `json:"eventTime"`
	FirstTimestamp string       `json:"firstTimestamp"`
	LastTimestamp  string       `json:"lastTimestamp"`
	Source         struct {
		Host string `json:"host"`
	} `json:"source"`
	ReportingInstance string `json:"reportingInstance"`
	// Object is set when the line is a watch event ({"type":"ADDED","object":{...}}).
	Object json.RawMessage `json:"object"`
}

// K8sJobEvents turns Kubernetes Events about Jobs (as written by an event
// exporter, or `kubectl get events -o json --watch --output-watch-events`,
// one object a line) into job events. The job is the Job's name without
// the CronJob's scheduled-time suffix ("payout-close-29399100" is job
// payout-close, run payout-close-29399100, scheduled 29399100 minutes
// after the epoch); the run id is the Job's name. Events about other
// kinds of objects carry no job event and are skipped.
type K8sJobEvents struct{}

// Kind implements Parser.
func (K8sJobEvents) Kind() Kind { return KindJob }

// Parse implements JobParser.
func (K8sJobEvents) Parse(line []byte, e *JobEvent) error {
	var ev k8sEvent
	if err := json.Unmarshal(line, &ev); err != nil {
		return fmt.Errorf("kubernetes event is not a JSON object: %w", err)
	}
	if len(ev.Object) > 0 && ev.Object[0] == '{' {
		var inner k8sEvent
		if err := json.Unmarshal(ev.Object, &inner); err != nil {
			return fmt.Errorf("kubernetes watch event \"object\": %w", err)
		}
		ev = inner
	}
	ref := ev.InvolvedObject
	if ref.Kind == "" {
		ref = ev.Regarding
	}
	if ref.Kind == "" {
		return fmt.Errorf("kubernetes event has no \"involvedObject\" or \"regarding\"")
	}
	if ref.Kind != "Job" {
		return ErrSkip
	}
	if ref.Name == "" {
		return fmt.Errorf("kubernetes Job event has no object name")
	}
	var t time.Time
	for _, ts := range []string{ev.LastTimestamp, ev.EventTime, ev.FirstTimestamp} {
		if ts == "" {
			continue
		}
		var err error
		if t, err = time.Parse(time.RFC3339Nano, ts); err != nil {
			return fmt.Errorf("kubernetes event time %q is not RFC 3339", truncate(ts, 40))
		}
		break
	}
	if t.IsZero() {
		return fmt.Errorf("kubernetes event has no lastTimestamp, eventTime or firstTimestamp")
	}
	e.Time = t.UTC()
	e.RunID = ref.Name
	e.Job = ref.Name
	if i := strings.LastIndexByte(ref.Name, '-'); i > 0 && len(ref.Name)-i-1 >= 8 {
		if mins, err := strconv.ParseInt(ref.Name[i+1:], 10, 64); err == nil && mins < 1e9 {
			e.Job = ref.Name[:i]
			e.ScheduledTime = time.Unix(mins*60, 0).UTC()
		}
	}
	e.Attempt = 1
	e.Message = ev.Message
	if e.Message == "" {
		e.Message = ev.Note
	}
	e.Host = ev.Source.Host
	if e.Host == "" {
		e.Host = ev.ReportingInstance
	}
	e.Level = "info"
	if ev.Type == "Warning" {
		e.Level = "warning"
	}
	switch ev.Reason {
	case "SuccessfulCreate":
		e.Event = EventStarted // a pod created: the run started, or a retry did
	case "Completed":
		e.Event = EventFinished
		e.ExitCode, e.HasExitCode = 0, true
	case "BackoffLimitExceeded", "DeadlineExceeded", "PodFailurePolicy", "MaxFailedIndexesExceeded", "FailedIndexes":
		e.Event = EventFailed
		e.ErrorClass = ev.Reason
		e.Error = e.Message
	default:
		e.Event = EventLog
	}
	e.LabelKeys = append(e.LabelKeys, "k8s_namespace", "k8s_reason")
	e.LabelValues = append(e.LabelValues, ref.Namespace, ev.Reason)
	return nil
}
