package sink

import (
	"time"

	"github.com/logpipe/logpipe/transform"
)

// JobEvents is a batch of rows for the job_events table.
type JobEvents struct {
	base
	time, scheduled, ingested                 *col[time.Time]
	timeMs                                    *col[uint64]
	job, runID, event, host, step, stepStatus *col[string]
	errMsg, errClass, level, message          *col[string]
	attempt                                   *col[uint16]
	stepDuration                              *col[float64]
	exitCode                                  *col[*int32]
	counterNames, labelKeys, labelValues      *col[[]string]
	counterValues                             *col[[]float64]
	topic                                     *col[string]
	partition                                 *col[int32]
	offset                                    *col[int64]
}

// NewJobEvents returns an empty batch for the job_events table.
func NewJobEvents() *JobEvents {
	b := &JobEvents{base: base{table: "job_events"}}
	c := &b.cols
	b.time = newCol[time.Time](c, "time")
	b.timeMs = newCol[uint64](c, "time_ms")
	b.job = newCol[string](c, "job")
	b.runID = newCol[string](c, "run_id")
	b.event = newCol[string](c, "event")
	b.scheduled = newCol[time.Time](c, "scheduled_time")
	b.attempt = newCol[uint16](c, "attempt")
	b.host = newCol[string](c, "host")
	b.step = newCol[string](c, "step")
	b.stepStatus = newCol[string](c, "step_status")
	b.stepDuration = newCol[float64](c, "step_duration_ms")
	b.exitCode = newCol[*int32](c, "exit_code")
	b.errMsg = newCol[string](c, "error")
	b.errClass = newCol[string](c, "error_class")
	b.level = newCol[string](c, "level")
	b.message = newCol[string](c, "message")
	b.counterNames = newCol[[]string](c, "counter_names")
	b.counterValues = newCol[[]float64](c, "counter_values")
	b.labelKeys = newCol[[]string](c, "label_keys")
	b.labelValues = newCol[[]string](c, "label_values")
	b.topic = newCol[string](c, "_topic")
	b.partition = newCol[int32](c, "_partition")
	b.offset = newCol[int64](c, "_offset")
	b.ingested = newCol[time.Time](c, "_ingested_at")
	return b
}

// Append adds one event. rawBytes is the size of the line it came from.
func (b *JobEvents) Append(e *transform.JobEvent, m Meta, now time.Time, rawBytes int) {
	b.time.add(clampTime(e.Time))
	b.timeMs.add(epochMs(e.Time))
	b.job.add(e.Job)
	b.runID.add(e.RunID)
	b.event.add(e.Event)
	if e.ScheduledTime.IsZero() {
		b.scheduled.add(time.Unix(0, 0).UTC())
	} else {
		b.scheduled.add(clampTime(e.ScheduledTime))
	}
	b.attempt.add(e.Attempt)
	b.host.add(e.Host)
	b.step.add(e.Step)
	b.stepStatus.add(e.StepStatus)
	b.stepDuration.add(e.DurationMs)
	if e.HasExitCode {
		x := e.ExitCode
		b.exitCode.add(&x)
	} else {
		b.exitCode.add(nil)
	}
	b.errMsg.add(e.Error)
	b.errClass.add(e.ErrorClass)
	b.level.add(e.Level)
	b.message.add(e.Message)
	b.counterNames.add(cloneStrings(e.CounterNames))
	b.counterValues.add(append([]float64(nil), e.CounterValues...))
	b.labelKeys.add(cloneStrings(e.LabelKeys))
	b.labelValues.add(cloneStrings(e.LabelValues))
	b.topic.add(m.Topic)
	b.partition.add(m.Partition)
	b.offset.add(m.Offset)
	b.ingested.add(now)
	b.added(rawBytes)
}

func cloneStrings(s []string) []string {
	if len(s) == 0 {
		return []string{}
	}
	return append([]string(nil), s...)
}

// CDNRequests is a batch of rows for the cdn_requests table.
type CDNRequests struct {
	base
	time, ingested                                               *col[time.Time]
	timeMs, bytesSent, sessionHash, clientIPHash                 *col[uint64]
	vendor, service, configVersion, pop, requestID, host         *col[string]
	method, scheme, protocol, path, pathTemplate, pathClass      *col[string]
	query, cacheStatus, cacheRaw, contentType, cacheControl      *col[string]
	expires, vary, etag, userAgent, uaClass, referer, country    *col[string]
	status, originStatus                                         *col[uint16]
	collapsed, fromCache, setCookie, hasSession, hasAuth         *col[uint8]
	flagPersonal, flagSetCookie, flagPrivate, flagAuth, flagTTL0 *col[uint8]
	durationMs, originMs                                         *col[float64]
	age                                                          *col[uint32]
	topic                                                        *col[string]
	partition                                                    *col[int32]
	offset                                                       *col[int64]
}

// NewCDNRequests returns an empty batch for the cdn_requests table.
func NewCDNRequests() *CDNRequests {
	b := &CDNRequests{base: base{table: "cdn_requests"}}
	c := &b.cols
	b.time = newCol[time.Time](c, "time")
	b.timeMs = newCol[uint64](c, "time_ms")
	b.vendor = newCol[string](c, "vendor")
	b.service = newCol[string](c, "service")
	b.configVersion = newCol[string](c, "config_version")
	b.pop = newCol[string](c, "pop")
	b.requestID = newCol[string](c, "request_id")
	b.host = newCol[string](c, "host")
	b.method = newCol[string](c, "method")
	b.scheme = newCol[string](c, "scheme")
	b.protocol = newCol[string](c, "protocol")
	b.path = newCol[string](c, "path")
	b.pathTemplate = newCol[string](c, "path_template")
	b.pathClass = newCol[string](c, "path_class")
	b.query = newCol[string](c, "query")
	b.status = newCol[uint16](c, "status")
	b.originStatus = newCol[uint16](c, "origin_status")
	b.cacheStatus = newCol[string](c, "cache_status")
	b.cacheRaw = newCol[string](c, "cache_status_raw")
	b.collapsed = newCol[uint8](c, "collapsed")
	b.fromCache = newCol[uint8](c, "from_cache")
	b.bytesSent = newCol[uint64](c, "bytes_sent")
	b.durationMs = newCol[float64](c, "duration_ms")
	b.originMs = newCol[float64](c, "origin_ms")
	b.contentType = newCol[string](c, "content_type")
	b.cacheControl = newCol[string](c, "cache_control")
	b.expires = newCol[string](c, "expires")
	b.age = newCol[uint32](c, "age")
	b.vary = newCol[string](c, "vary")
	b.setCookie = newCol[uint8](c, "set_cookie")
	b.etag = newCol[string](c, "etag")
	b.userAgent = newCol[string](c, "user_agent")
	b.uaClass = newCol[string](c, "ua_class")
	b.referer = newCol[string](c, "referer")
	b.country = newCol[string](c, "country")
	b.hasSession = newCol[uint8](c, "has_session_cookie")
	b.hasAuth = newCol[uint8](c, "has_authorization")
	b.sessionHash = newCol[uint64](c, "session_hash")
	b.clientIPHash = newCol[uint64](c, "client_ip_hash")
	b.flagPersonal = newCol[uint8](c, "flag_personal_cached")
	b.flagSetCookie = newCol[uint8](c, "flag_set_cookie_cached")
	b.flagPrivate = newCol[uint8](c, "flag_private_cached")
	b.flagAuth = newCol[uint8](c, "flag_auth_cached")
	b.flagTTL0 = newCol[uint8](c, "flag_ttl_zero")
	b.topic = newCol[string](c, "_topic")
	b.partition = newCol[int32](c, "_partition")
	b.offset = newCol[int64](c, "_offset")
	b.ingested = newCol[time.Time](c, "_ingested_at")
	return b
}

// Append adds one request. Its secrets must already be hashed and cleared
// (transform.Enricher.CDN does both).
func (b *CDNRequests) Append(r *transform.CDNRequest, m Meta, now time.Time, rawBytes int) {
	b.time.add(clampTime(r.Time))
	b.timeMs.add(epochMs(r.Time))
	b.vendor.add(r.Vendor)
	b.service.add(r.Service)
	b.configVersion.add(r.ConfigVersion)
	b.pop.add(r.POP)
	b.requestID.add(r.RequestID)
	b.host.add(r.Host)
	b.method.add(r.Method)
	b.scheme.add(r.Scheme)
	b.protocol.add(r.Protocol)
	b.path.add(r.Path)
	b.pathTemplate.add(r.PathTemplate)
	b.pathClass.add(r.PathClass)
	b.query.add(r.Query)
	b.status.add(r.Status)
	b.originStatus.add(r.OriginStatus)
	b.cacheStatus.add(r.CacheStatus)
	b.cacheRaw.add(r.CacheRaw)
	b.collapsed.add(b2u8(r.Collapsed))
	b.fromCache.add(b2u8(r.FromCache))
	b.bytesSent.add(r.BytesSent)
	b.durationMs.add(r.DurationMs)
	b.originMs.add(r.OriginMs)
	b.contentType.add(r.ContentType)
	b.cacheControl.add(r.CacheControl)
	b.expires.add(r.Expires)
	b.age.add(r.Age)
	b.vary.add(r.Vary)
	b.setCookie.add(b2u8(r.SetCookie))
	b.etag.add(r.ETag)
	b.userAgent.add(r.UserAgent)
	b.uaClass.add(r.UAClass)
	b.referer.add(r.Referer)
	b.country.add(r.Country)
	b.hasSession.add(b2u8(r.HasSessionCookie))
	b.hasAuth.add(b2u8(r.HasAuthorization))
	b.sessionHash.add(r.SessionHash)
	b.clientIPHash.add(r.ClientIPHash)
	b.flagPersonal.add(b2u8(r.FlagPersonalCached))
	b.flagSetCookie.add(b2u8(r.FlagSetCookieCached))
	b.flagPrivate.add(b2u8(r.FlagPrivateCached))
	b.flagAuth.add(b2u8(r.FlagAuthCached))
	b.flagTTL0.add(b2u8(r.FlagTTLZero))
	b.topic.add(m.Topic)
	b.partition.add(m.Partition)
	b.offset.add(m.Offset)
	b.ingested.add(now)
	b.added(rawBytes)
}

// IngestErrors is a batch of rows for the ingest_errors table: records
// that could not be parsed, kept with their reason.
type IngestErrors struct {
	base
	time                               *col[time.Time]
	stream, format, reason, raw, topic *col[string]
	line, rawSize                      *col[uint32]
	partition                          *col[int32]
	offset                             *col[int64]
}

// NewIngestErrors returns an empty batch for the ingest_errors table.
func NewIngestErrors() *IngestErrors {
	b := &IngestErrors{base: base{table: "ingest_errors"}}
	c := &b.cols
	b.time = newCol[time.Time](c, "time")
	b.stream = newCol[string](c, "stream")
	b.format = newCol[string](c, "format")
	b.line = newCol[uint32](c, "line")
	b.reason = newCol[string](c, "reason")
	b.raw = newCol[string](c, "raw")
	b.rawSize = newCol[uint32](c, "raw_size")
	b.topic = newCol[string](c, "_topic")
	b.partition = newCol[int32](c, "_partition")
	b.offset = newCol[int64](c, "_offset")
	return b
}

// Append adds one rejected record. raw is stored as given: the caller
// cuts and redacts it.
func (b *IngestErrors) Append(stream, format string, line int, reason string, raw []byte, rawSize int, m Meta, now time.Time) {
	b.time.add(now)
	b.stream.add(stream)
	b.format.add(format)
	b.line.add(uint32(line))
	b.reason.add(reason)
	b.raw.add(string(raw))
	b.rawSize.add(uint32(min(rawSize, 1<<32-1)))
	b.topic.add(m.Topic)
	b.partition.add(m.Partition)
	b.offset.add(m.Offset)
	b.added(len(raw))
}

// Raw returns the stored bytes of each rejected record, in order (for
// checks: what reaches ClickHouse).
func (b *IngestErrors) Raw() []string { return b.raw.v }
