package transform

import (
	"bytes"
	"encoding/binary"
	"unsafe"

	json "github.com/goccy/go-json"
)

// decode fills f from line without reflection or allocation when line is
// a flat JSON object whose strings are plain ASCII without escapes: the
// shape of almost every Fastly log line. It reports false for anything
// else (escapes, non-ASCII, nesting where a string is expected, syntax it
// does not follow), and the caller then decodes the line with goccy/go-json,
// so results never depend on which path ran.
//
// Strings alias line: line must not be modified while f's strings (or the
// record built from them) are in use. Kafka record values are never reused
// by kafka-go, and the sink copies values when it sends a batch.
//
// With a field map, the user's keys are renamed as they are read; a
// mapped key whose value needs converting leaves the line to the general
// path.
func (f *fastlyJSON) decode(line []byte, m *keyMap) bool {
	if !plainASCII(line) {
		return false
	}
	i := skipSpace(line, 0)
	if i >= len(line) || line[i] != '{' {
		return false
	}
	i = skipSpace(line, i+1)
	if i < len(line) && line[i] == '}' {
		return skipSpace(line, i+1) == len(line)
	}
	for {
		key, next, ok := plainString(line, i)
		if !ok {
			return false
		}
		i = skipSpace(line, next)
		if i >= len(line) || line[i] != ':' {
			return false
		}
		i = skipSpace(line, i+1)
		start := i
		end, isString, ok := scalarEnd(line, i)
		if !ok {
			return false
		}
		raw := line[start:end]
		skip := false
		if m != nil && m.rename != nil {
			if r, ok := m.rename[key]; ok {
				if r.converts() && !r.scaled {
					return false
				}
				key = r.key
			} else if m.drop[key] {
				skip = true
			}
		}
		if !skip && !f.set(key, raw, isString) {
			return false
		}
		i = skipSpace(line, end)
		if i >= len(line) {
			return false
		}
		switch line[i] {
		case ',':
			i = skipSpace(line, i+1)
		case '}':
			return skipSpace(line, i+1) == len(line)
		default:
			return false
		}
	}
}

// set stores one value; false when the value's type does not fit the field
// (the slow path then reports the error exactly as goccy/go-json words it).
func (f *fastlyJSON) set(key string, raw []byte, isString bool) bool {
	var s *string
	var r *json.RawMessage
	switch key {
	case "timestamp":
		r = &f.Timestamp
	case "time_start_msec":
		r = &f.TimeStartMsec
	case "client_ip":
		s = &f.ClientIP
	case "geo_country_code":
		s = &f.GeoCountry
	case "host":
		s = &f.Host
	case "url":
		s = &f.URL
	case "request_method":
		s = &f.RequestMethod
	case "request_protocol":
		s = &f.RequestProtocol
	case "request_referer":
		s = &f.RequestReferer
	case "request_user_agent":
		s = &f.RequestUA
	case "request_cookie":
		s = &f.RequestCookie
	case "request_authorization":
		s = &f.RequestAuth
	case "request_id":
		s = &f.RequestID
	case "response_state":
		s = &f.ResponseState
	case "response_status":
		r = &f.ResponseStatus
	case "response_body_size":
		r = &f.ResponseBodySize
	case "response_cache_control":
		s = &f.CacheControl
	case "response_expires":
		s = &f.Expires
	case "response_age":
		r = &f.Age
	case "response_vary":
		s = &f.Vary
	case "response_set_cookie":
		s = &f.SetCookie
	case "response_content_type":
		s = &f.ContentType
	case "response_etag":
		s = &f.ETag
	case "time_elapsed_usec":
		r = &f.ElapsedUsec
	case "origin_status":
		r = &f.OriginStatus
	case "origin_ttfb_ms":
		r = &f.OriginMs
	case "fastly_server":
		s = &f.FastlyServer
	case "pop":
		s = &f.Datacenter
	case "service_id":
		s = &f.ServiceID
	case "service_version":
		r = &f.ServiceVersion
	default:
		// Unknown keys are ignored, as by Unmarshal, which also matches
		// keys case-insensitively: leave keys with capitals to it.
		for i := 0; i < len(key); i++ {
			if key[i] >= 'A' && key[i] <= 'Z' {
				return false
			}
		}
		return true
	}
	if r != nil {
		*r = raw
		return true
	}
	if isString {
		*s = unsafeString(raw[1 : len(raw)-1])
		return true
	}
	if string(raw) == "null" {
		return true // null leaves a string field as it was
	}
	return false
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// plainASCII reports whether b has only printable ASCII and spaces: no
// escapes, control characters or multi-byte characters, so that strings
// can be cut out of it as they are.
func plainASCII(b []byte) bool {
	const hi, lo = 0x8080808080808080, 0x0101010101010101
	i := 0
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:]) // one load
		bs := x ^ (lo * '\\')
		// high bit set, a byte < 0x20, or a backslash
		if (x|((x-lo*0x20)&^x)|((bs-lo)&^bs))&hi != 0 {
			return false
		}
	}
	for ; i < len(b); i++ {
		if c := b[i]; c < 0x20 || c >= 0x80 || c == '\\' {
			return false
		}
	}
	return true
}

// plainString reads a string at b[i] of a line that passed plainASCII,
// returning its content (aliasing b) and the index after it.
func plainString(b []byte, i int) (string, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return "", 0, false
	}
	j := bytes.IndexByte(b[i+1:], '"')
	if j < 0 {
		return "", 0, false
	}
	return unsafeString(b[i+1 : i+1+j]), i + 2 + j, true
}

// scalarEnd finds the end of a plain string, number, true, false or null
// at b[i]. Objects, arrays and anything unusual report false.
func scalarEnd(b []byte, i int) (end int, isString, ok bool) {
	if i >= len(b) {
		return 0, false, false
	}
	switch c := b[i]; {
	case c == '"':
		_, end, ok := plainString(b, i)
		return end, true, ok
	case c == '-' || (c >= '0' && c <= '9'):
		j := i + 1
		for j < len(b) && (b[j] >= '0' && b[j] <= '9' || b[j] == '.' || b[j] == 'e' || b[j] == 'E' || b[j] == '+' || b[j] == '-') {
			j++
		}
		if !validNumber(b[i:j]) {
			return 0, false, false
		}
		return j, false, true
	}
	for _, lit := range [...]string{"true", "false", "null"} {
		if len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit {
			return i + len(lit), false, true
		}
	}
	return 0, false, false
}

// validNumber checks JSON number syntax: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func validNumber(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if i < len(b) && b[i] == '0' {
		i++
	} else if digits() == 0 {
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(b)
}

func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
