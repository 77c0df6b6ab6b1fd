package transform

import (
	"fmt"
	"math"
	"strconv"
	"time"
)

var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05Z0700", // strftime %Y-%m-%dT%H:%M:%S%z (Fastly)
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999", // no zone: UTC
	"02/Jan/2006:15:04:05 -0700",    // common log format
	time.RFC1123,
	time.RFC1123Z,
}

// ParseTime reads a timestamp as RFC 3339 (with or without a colon in the
// offset), a common-log-format time, or a number of seconds, milliseconds,
// microseconds or nanoseconds since the epoch (told apart by magnitude).
// Times without a zone are UTC.
func ParseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, fmt.Errorf("empty timestamp")
	}
	if c := s[0]; c >= '0' && c <= '9' && len(s) < 24 && isNumber(s) {
		f, err := strconv.ParseFloat(s, 64)
		if err == nil {
			return EpochTime(f)
		}
	}
	// The common shapes first, by their look, so that a line costs one
	// parse (a failed time.Parse allocates its error).
	if len(s) >= 20 && s[10] == 'T' {
		l := time.RFC3339Nano
		if c := s[len(s)-5]; (c == '+' || c == '-') && s[len(s)-3] != ':' {
			l = "2006-01-02T15:04:05.999999999Z0700"
		}
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), nil
		}
	}
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("timestamp %q is neither RFC 3339 nor epoch", truncate(s, 64))
}

func isNumber(s string) bool {
	dot := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '.' && !dot {
			dot = true
			continue
		}
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// EpochTime turns a number since the epoch into a time, taking seconds,
// milliseconds, microseconds or nanoseconds by its magnitude.
func EpochTime(f float64) (time.Time, error) {
	if f <= 0 || math.IsNaN(f) || math.IsInf(f, 0) {
		return time.Time{}, fmt.Errorf("epoch timestamp %v out of range", f)
	}
	switch {
	case f < 1e11: // seconds (until year 5138)
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(frac*1e9)).UTC(), nil
	case f < 1e14: // milliseconds
		return time.UnixMilli(int64(f)).UTC(), nil
	case f < 1e17: // microseconds
		return time.UnixMicro(int64(f)).UTC(), nil
	default: // nanoseconds
		return time.Unix(0, int64(f)).UTC(), nil
	}
}

// truncate shortens s for error messages.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
