// Package transform turns raw log lines into normalised records: batch-job
// events and CDN requests. Parsers read one line; the Enricher then adds
// what analysts query by (path templates, path classes, keyed hashes of
// personal data, cache-anomaly flags).
//
// Nothing personal leaves this package in clear: parsers put cookies,
// authorization values and client addresses into the Secret fields of a
// record, and Enricher.CDN replaces them with keyed hashes and clears them.
package transform

import "time"

// Kind says which table a format's records go to.
type Kind uint8

const (
	// KindJob records are batch-job events (table job_events).
	KindJob Kind = iota + 1
	// KindCDN records are CDN access-log requests (table cdn_requests).
	KindCDN
)

func (k Kind) String() string {
	switch k {
	case KindJob:
		return "job"
	case KindCDN:
		return "cdn"
	}
	return "unknown"
}

// Job event kinds.
const (
	EventStarted   = "started"
	EventHeartbeat = "heartbeat"
	EventStep      = "step"
	EventFinished  = "finished"
	EventFailed    = "failed"
	EventLog       = "log"
)

// JobEvent is one event of one run of a batch job.
type JobEvent struct {
	Time          time.Time // when the event happened (UTC)
	Job           string    // job name, stable across runs
	RunID         string    // one run of the job; retries keep it and raise Attempt
	Event         string    // started, heartbeat, step, finished, failed, log
	ScheduledTime time.Time // when the run was due; zero if unknown
	Attempt       uint16    // 1 for the first try
	Host          string
	Step          string  // for step events
	StepStatus    string  // succeeded, failed, skipped, running
	DurationMs    float64 // for step events that report their own duration
	ExitCode      int32
	HasExitCode   bool
	Error         string
	ErrorClass    string
	Level         string
	Message       string
	CounterNames  []string
	CounterValues []float64
	LabelKeys     []string
	LabelValues   []string
}

// Reset clears e for reuse, keeping slice capacity.
func (e *JobEvent) Reset() {
	*e = JobEvent{
		CounterNames:  e.CounterNames[:0],
		CounterValues: e.CounterValues[:0],
		LabelKeys:     e.LabelKeys[:0],
		LabelValues:   e.LabelValues[:0],
	}
}

// Normalised cache statuses (column cdn_requests.cache_status).
const (
	CacheHit         = "hit"         // served from cache, fresh
	CacheMiss        = "miss"        // fetched from origin, cacheable
	CachePass        = "pass"        // not cacheable, sent to origin (pass, bypass, dynamic)
	CacheExpired     = "expired"     // cached copy expired, fetched again
	CacheStale       = "stale"       // stale copy served
	CacheUpdating    = "updating"    // stale copy served while it is refreshed
	CacheRevalidated = "revalidated" // cached copy revalidated with the origin (304) and served
	CacheSynth       = "synth"       // synthetic response generated at the edge
	CacheError       = "error"       // error at the edge
	CacheNone        = "none"        // no cache lookup happened
	CacheUnknown     = "unknown"     // the vendor's value is not known to logpipe
)

// FromCache reports whether a normalised cache status means the body came
// from the edge cache rather than from the origin for this request.
func FromCache(status string) bool {
	switch status {
	case CacheHit, CacheStale, CacheUpdating, CacheRevalidated:
		return true
	}
	return false
}

// CDNRequest is one request served by a CDN (or a caching web server).
type CDNRequest struct {
	Time          time.Time // request start (UTC)
	Vendor        string
	Service       string // vendor's service / distribution / zone id
	ConfigVersion string // configuration version that served it
	POP           string // edge location / server id
	RequestID     string
	Host          string
	Method        string
	Scheme        string
	Protocol      string
	Path          string // path without query string
	PathTemplate  string // path with ids replaced (/items/:id)
	PathClass     string // from config: personal, auth, api, static, other
	Query         string // query string, listed parameters removed
	Status        uint16
	OriginStatus  uint16 // 0 when the origin was not contacted
	CacheStatus   string // normalised, see the Cache* constants
	CacheRaw      string // the vendor's own value
	Collapsed     bool   // waited on another request's origin fetch (request collapsing)
	FromCache     bool
	BytesSent     uint64
	DurationMs    float64 // time to serve
	OriginMs      float64 // time spent on the origin fetch, 0 if none
	ContentType   string
	CacheControl  string // response Cache-Control
	Expires       string // response Expires
	Age           uint32 // response Age, seconds
	Vary          string
	SetCookie     bool // response carried Set-Cookie
	ETag          string
	UserAgent     string
	UAClass       string // browser, app, bot, monitor, tool, unknown
	Referer       string
	Country       string

	HasSessionCookie bool
	HasAuthorization bool
	SessionHash      uint64 // keyed hash of the session cookie or authorization value, 0 if none
	ClientIPHash     uint64 // keyed hash of the client address, 0 if none

	// Row-level cache anomaly flags, set by the Enricher.
	FlagPersonalCached  bool // personal or auth path served from cache or collapsed
	FlagSetCookieCached bool // Set-Cookie response served from cache or collapsed
	FlagPrivateCached   bool // Cache-Control private/no-store served from cache or collapsed
	FlagAuthCached      bool // authenticated request (cookie/Authorization) served from cache or collapsed, for an object with a personal signal (PersonalSignals), not a static asset
	FlagTTLZero         bool // Expires in the past and no max-age/s-maxage: a CDN may treat it as TTL 0

	// Secrets in clear, set by parsers and cleared by the Enricher once hashed.
	Secret Secrets
}

// Secrets holds personal values in clear between parsing and hashing.
type Secrets struct {
	Cookie        string // request Cookie header
	Authorization string // request Authorization header
	ClientIP      string
}

// Reset clears r for reuse.
func (r *CDNRequest) Reset() { *r = CDNRequest{} }

// Anomalous reports whether any row-level anomaly flag is set.
func (r *CDNRequest) Anomalous() bool {
	return r.FlagPersonalCached || r.FlagSetCookieCached || r.FlagPrivateCached || r.FlagAuthCached || r.FlagTTLZero
}
