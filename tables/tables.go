package tables

import (
	"time"

	"github.com/logpipe/logpipe/transform"
)

// JobEvents is a batch of rows for the job_events table.
type JobEvents struct {
	base
	time, scheduled, ingested            *timeCol
	timeMs                               *col[uint64]
	runID, step, errMsg, message         *col[string]
	job, event, host, stepStatus         *lowCard
	errClass, level, topic               *lowCard
	attempt                              *col[uint16]
	stepDuration                         *col[float64]
	exitCode                             *nullInt32
	counterNames, labelKeys, labelValues *array[string]
	counterValues                        *array[float64]
	partition                            *col[int32]
	offset                               *col[int64]
}

// NewJobEvents returns an empty batch for the job_events table.
func NewJobEvents() *JobEvents {
	b := &JobEvents{base: base{table: "job_events"}}
	c := &b.cols
	b.time = newTime(c, "time")
	b.timeMs = newCol[uint64](c, "time_ms", "UInt64")
	b.job = newLowCard(c, "job")
	b.runID = newCol[string](c, "run_id", "String")
	b.event = newLowCard(c, "event")
	b.scheduled = newTime(c, "scheduled_time")
	b.attempt = newCol[uint16](c, "attempt", "UInt16")
	b.host = newLowCard(c, "host")
	b.step = newCol[string](c, "step", "String")
	b.stepStatus = newLowCard(c, "step_status")
	b.stepDuration = newCol[float64](c, "step_duration_ms", "Float64")
	b.exitCode = newNullInt32(c, "exit_code")
	b.errMsg = newCol[string](c, "error", "String")
	b.errClass = newLowCard(c, "error_class")
	b.level = newLowCard(c, "level")
	b.message = newCol[string](c, "message", "String")
	b.counterNames = newArray[string](c, "counter_names", "Array(String)")
	b.counterValues = newArray[float64](c, "counter_values", "Array(Float64)")
	b.labelKeys = newArray[string](c, "label_keys", "Array(String)")
	b.labelValues = newArray[string](c, "label_values", "Array(String)")
	b.topic = newLowCard(c, "_topic")
	b.partition = newCol[int32](c, "_partition", "Int32")
	b.offset = newCol[int64](c, "_offset", "Int64")
	b.ingested = newTime(c, "_ingested_at")
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
	b.exitCode.add(e.ExitCode, e.HasExitCode)
	b.errMsg.add(e.Error)
	b.errClass.add(e.ErrorClass)
	b.level.add(e.Level)
	b.message.add(e.Message)
	b.counterNames.add(e.CounterNames)
	b.counterValues.add(e.CounterValues)
	b.labelKeys.add(e.LabelKeys)
	b.labelValues.add(e.LabelValues)
	b.topic.add(m.Topic)
	b.partition.add(m.Partition)
	b.offset.add(m.Offset)
	b.ingested.add(now)
	b.added(m, rawBytes)
}

// CDNRequests is a batch of rows for the cdn_requests table.
type CDNRequests struct {
	base
	time, ingested                                               *timeCol
	timeMs, bytesSent, sessionHash, clientIPHash                 *col[uint64]
	requestID, path, query, expires, etag, userAgent, referer    *col[string]
	vendor, service, configVersion, pop, host, method, scheme    *lowCard
	protocol, pathTemplate, pathClass, cacheStatus, cacheRaw     *lowCard
	contentType, cacheControl, vary, uaClass, country, topic     *lowCard
	status, originStatus                                         *col[uint16]
	collapsed, fromCache, setCookie, hasSession, hasAuth         *col[uint8]
	flagPersonal, flagSetCookie, flagPrivate, flagAuth, flagTTL0 *col[uint8]
	durationMs, originMs                                         *col[float64]
	age                                                          *col[uint32]
	partition                                                    *col[int32]
	offset                                                       *col[int64]
}

// NewCDNRequests returns an empty batch for the cdn_requests table.
func NewCDNRequests() *CDNRequests {
	b := &CDNRequests{base: base{table: "cdn_requests"}}
	c := &b.cols
	b.time = newTime(c, "time")
	b.timeMs = newCol[uint64](c, "time_ms", "UInt64")
	b.vendor = newLowCard(c, "vendor")
	b.service = newLowCard(c, "service")
	b.configVersion = newLowCard(c, "config_version")
	b.pop = newLowCard(c, "pop")
	b.requestID = newCol[string](c, "request_id", "String")
	b.host = newLowCard(c, "host")
	b.method = newLowCard(c, "method")
	b.scheme = newLowCard(c, "scheme")
	b.protocol = newLowCard(c, "protocol")
	b.path = newCol[string](c, "path", "String")
	b.pathTemplate = newLowCard(c, "path_template")
	b.pathClass = newLowCard(c, "path_class")
	b.query = newCol[string](c, "query", "String")
	b.status = newCol[uint16](c, "status", "UInt16")
	b.originStatus = newCol[uint16](c, "origin_status", "UInt16")
	b.cacheStatus = newLowCard(c, "cache_status")
	b.cacheRaw = newLowCard(c, "cache_status_raw")
	b.collapsed = newCol[uint8](c, "collapsed", "UInt8")
	b.fromCache = newCol[uint8](c, "from_cache", "UInt8")
	b.bytesSent = newCol[uint64](c, "bytes_sent", "UInt64")
	b.durationMs = newCol[float64](c, "duration_ms", "Float64")
	b.originMs = newCol[float64](c, "origin_ms", "Float64")
	b.contentType = newLowCard(c, "content_type")
	b.cacheControl = newLowCard(c, "cache_control")
	b.expires = newCol[string](c, "expires", "String")
	b.age = newCol[uint32](c, "age", "UInt32")
	b.vary = newLowCard(c, "vary")
	b.setCookie = newCol[uint8](c, "set_cookie", "UInt8")
	b.etag = newCol[string](c, "etag", "String")
	b.userAgent = newCol[string](c, "user_agent", "String")
	b.uaClass = newLowCard(c, "ua_class")
	b.referer = newCol[string](c, "referer", "String")
	b.country = newLowCard(c, "country")
	b.hasSession = newCol[uint8](c, "has_session_cookie", "UInt8")
	b.hasAuth = newCol[uint8](c, "has_authorization", "UInt8")
	b.sessionHash = newCol[uint64](c, "session_hash", "UInt64")
	b.clientIPHash = newCol[uint64](c, "client_ip_hash", "UInt64")
	b.flagPersonal = newCol[uint8](c, "flag_personal_cached", "UInt8")
	b.flagSetCookie = newCol[uint8](c, "flag_set_cookie_cached", "UInt8")
	b.flagPrivate = newCol[uint8](c, "flag_private_cached", "UInt8")
	b.flagAuth = newCol[uint8](c, "flag_auth_cached", "UInt8")
	b.flagTTL0 = newCol[uint8](c, "flag_ttl_zero", "UInt8")
	b.topic = newLowCard(c, "_topic")
	b.partition = newCol[int32](c, "_partition", "Int32")
	b.offset = newCol[int64](c, "_offset", "Int64")
	b.ingested = newTime(c, "_ingested_at")
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
	b.added(m, rawBytes)
}

// IngestErrors is a batch of rows for the ingest_errors table: records
// that could not be parsed, kept with their reason.
type IngestErrors struct {
	base
	time                  *timeCol
	reason, raw           *col[string]
	stream, format, topic *lowCard
	line, rawSize         *col[uint32]
	partition             *col[int32]
	offset                *col[int64]
}

// NewIngestErrors returns an empty batch for the ingest_errors table.
func NewIngestErrors() *IngestErrors {
	b := &IngestErrors{base: base{table: "ingest_errors"}}
	c := &b.cols
	b.time = newTime(c, "time")
	b.stream = newLowCard(c, "stream")
	b.format = newLowCard(c, "format")
	b.line = newCol[uint32](c, "line", "UInt32")
	b.reason = newCol[string](c, "reason", "String")
	b.raw = newCol[string](c, "raw", "String")
	b.rawSize = newCol[uint32](c, "raw_size", "UInt32")
	b.topic = newLowCard(c, "_topic")
	b.partition = newCol[int32](c, "_partition", "Int32")
	b.offset = newCol[int64](c, "_offset", "Int64")
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
	b.added(m, len(raw))
}

// Raw returns the stored bytes of each rejected record, in order (for
// checks: what reaches ClickHouse).
func (b *IngestErrors) Raw() []string { return b.raw.v }
