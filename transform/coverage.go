package transform

// Coverage fields: what logpipe reads from a CDN log for its tables and
// its cache-anomaly detection, in the order reports list them.
const (
	CovTime = iota
	CovMethod
	CovHost
	CovPath
	CovStatus
	CovCacheStatus
	CovBytes
	CovOriginTime
	CovSessionCookie
	CovCacheControl
	CovSetCookie
	CovClientIP
	CovCount
)

var coverageNames = [CovCount]string{
	"time", "method", "host", "path", "status", "cache_status", "bytes",
	"origin_time", "session_cookie", "cache_control", "set_cookie", "client_ip",
}

// CoverageName is a coverage field's name (the names of metric labels and
// of logpipe check's table; field_map names where they differ are in
// docs/formats.md).
func CoverageName(f int) string { return coverageNames[f] }

// DetectionField reports whether the cache-anomaly detection cannot work
// without the field: a stream where it is missing from every line stores
// rows the leak checks cannot judge.
func DetectionField(f int) bool { return f == CovCacheStatus }

// CDNCoverage sets found[f] for each field r has a value for. r may be
// parsed only or enriched too (the session cookie is known only after
// enrichment, which clears the client address once hashed).
func CDNCoverage(r *CDNRequest, found *[CovCount]bool) {
	found[CovTime] = !r.Time.IsZero()
	found[CovMethod] = r.Method != ""
	found[CovHost] = r.Host != ""
	found[CovPath] = r.Path != ""
	found[CovStatus] = r.Status != 0
	found[CovCacheStatus] = r.CacheRaw != "" && r.CacheRaw != "-" && r.CacheRaw != "(null)"
	found[CovBytes] = r.BytesSent != 0
	found[CovOriginTime] = r.OriginMs != 0
	found[CovSessionCookie] = r.HasSessionCookie
	found[CovCacheControl] = r.CacheControl != ""
	found[CovSetCookie] = r.SetCookie
	found[CovClientIP] = r.Secret.ClientIP != "" || r.ClientIPHash != 0
}
