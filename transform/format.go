package transform

import (
	"fmt"
	"strings"
)

// Parser is what every format implements: which table its records go to.
// A format also implements RecordParser of its kind: JobParser or
// CDNParser.
type Parser interface {
	Kind() Kind
}

// Record is the constraint of the record kinds a line becomes.
type Record interface {
	JobEvent | CDNRequest
}

// RecordParser parses one line into a record of kind R. r is reset by the
// caller (Stage.Parse does it).
type RecordParser[R Record] interface {
	Parser
	Parse(line []byte, r *R) error
}

// JobParser parses lines into job events.
type JobParser = RecordParser[JobEvent]

// CDNParser parses lines into CDN requests.
type CDNParser = RecordParser[CDNRequest]

// ErrSkip is returned by parsers for lines that carry no record and are
// no error either (comments, header lines, blank lines).
var ErrSkip = fmt.Errorf("line carries no record")

// ParserOptions configure the formats that need it. The zero value gives
// each format's documented default.
type ParserOptions struct {
	// LogFormat is an nginx log_format string (format "nginx") or an
	// Apache LogFormat string (format "apache").
	LogFormat string `json:"log_format,omitempty"`
	// Fields lists the tab-separated fields of CloudFront logs in order
	// (formats "cloudfront-realtime" and "cloudfront-standard").
	Fields []string `json:"fields,omitempty"`
	// FieldMap says which keys of a JSON log mean what (formats
	// "job-json", "job-logfmt", "fastly-json", "cloudflare-json",
	// "akamai-datastream2"): logpipe name (job, run_id, ...; cache_status,
	// bytes, duration, ...; FieldMapNames) to the user's key, with an
	// optional unit for durations and times ("time_elapsed:ms").
	FieldMap map[string]string `json:"field_map,omitempty"`
}

// formatNames lists the built-in formats, sorted.
var formatNames = [...]string{
	"akamai-datastream2",
	"apache",
	"apache-combined",
	"cloudflare-json",
	"cloudfront-realtime",
	"cloudfront-standard",
	"fastly-json",
	"job-json",
	"job-logfmt",
	"k8s-job-events",
	"logpipe-job",
	"nginx",
	"nginx-combined",
}

// NewParser returns a parser of the named format with its default options.
func NewParser(name string) (Parser, error) {
	return NewParserWith(name, ParserOptions{})
}

// NewParserWith returns a parser of the named format configured by opts.
// Options a format does not use are an error, so that a misplaced option
// in the config is not silently ignored.
func NewParserWith(name string, opts ParserOptions) (Parser, error) {
	unused := func(what string) error {
		return fmt.Errorf("format %q takes no %s option", name, what)
	}
	if opts.LogFormat != "" && name != "nginx" && name != "apache" {
		return nil, unused("log_format")
	}
	if len(opts.Fields) > 0 && name != "cloudfront-realtime" && name != "cloudfront-standard" {
		return nil, unused("fields")
	}
	if len(opts.FieldMap) > 0 && FieldMapNames(name) == nil {
		if _, ok := knownFormat(name); ok {
			return nil, unused("field_map")
		}
	}
	switch name {
	case "logpipe-job":
		return JobJSON{}, nil
	case "fastly-json":
		m, err := newKeyMap(name, opts.FieldMap)
		if err != nil {
			return nil, err
		}
		return FastlyJSON{keys: m}, nil
	case "cloudfront-standard":
		return parserOrNil(NewCloudFrontStandard(opts.Fields))
	case "cloudfront-realtime":
		return parserOrNil(NewCloudFrontRealtime(opts.Fields))
	case "cloudflare-json":
		m, err := newKeyMap(name, opts.FieldMap)
		if err != nil {
			return nil, err
		}
		return CloudflareJSON{keys: m}, nil
	case "akamai-datastream2":
		m, err := newKeyMap(name, opts.FieldMap)
		if err != nil {
			return nil, err
		}
		return AkamaiDS2{keys: m}, nil
	case "nginx-combined":
		return parserOrNil(NewNginx(NginxCombined, "nginx"))
	case "nginx":
		f := opts.LogFormat
		if f == "" {
			f = NginxCombined
		}
		return parserOrNil(NewNginx(f, "nginx"))
	case "apache-combined":
		return parserOrNil(NewApache(ApacheCombined))
	case "apache":
		f := opts.LogFormat
		if f == "" {
			f = ApacheCombined
		}
		return parserOrNil(NewApache(f))
	case "k8s-job-events":
		return K8sJobEvents{}, nil
	case "job-json":
		return parserOrNil(NewJobFields(opts.FieldMap, false))
	case "job-logfmt":
		return parserOrNil(NewJobFields(opts.FieldMap, true))
	}
	return nil, fmt.Errorf("unknown format %q (known: %s)", name, strings.Join(Formats(), ", "))
}

func knownFormat(name string) (int, bool) {
	for i, n := range formatNames {
		if n == name {
			return i, true
		}
	}
	return -1, false
}

// Formats lists the known format names.
func Formats() []string {
	return append([]string(nil), formatNames[:]...)
}

// parserOrNil keeps a failed constructor's typed nil out of the Parser
// interface.
func parserOrNil[P Parser](p P, err error) (Parser, error) {
	if err != nil {
		return nil, err
	}
	return p, nil
}
