package transform

import (
	"fmt"
	"sort"
)

// Parser is what every format implements: which table its records go to.
// A format also implements JobParser or CDNParser, for its kind.
type Parser interface {
	Kind() Kind
}

// JobParser parses one line into a job event. e is reset by the caller.
type JobParser interface {
	Parser
	ParseJob(line []byte, e *JobEvent) error
}

// CDNParser parses one line into a CDN request. r is reset by the caller.
type CDNParser interface {
	Parser
	ParseCDN(line []byte, r *CDNRequest) error
}

// ErrSkip is returned by parsers for lines that carry no record and are
// no error either (comments, header lines, blank lines).
var ErrSkip = fmt.Errorf("line carries no record")

// formats lists the built-in formats by name.
var formats = map[string]func() Parser{
	"logpipe-job": func() Parser { return JobJSON{} },
	"fastly-json": func() Parser { return FastlyJSON{} },
}

// NewParser returns a parser of the named format.
func NewParser(name string) (Parser, error) {
	f, ok := formats[name]
	if !ok {
		return nil, fmt.Errorf("unknown format %q (known: %v)", name, Formats())
	}
	return f(), nil
}

// Formats lists the known format names.
func Formats() []string {
	names := make([]string, 0, len(formats))
	for n := range formats {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
