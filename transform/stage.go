package transform

import "fmt"

// Stage turns the lines of one stream into enriched records of kind R:
// the one path from a line to a record, used by the pipeline, logpipe
// check and the tests. It is two steps, so that the pipeline can skip
// enriching a record it has already stored.
type Stage[R Record] struct {
	Parser RecordParser[R]
	// Vendor is the CDN vendor of requests whose line does not name one
	// (the stream's vendor option).
	Vendor string
}

// NewStage returns the stage of parser p, if p parses records of kind R.
func NewStage[R Record](p Parser, vendor string) (Stage[R], bool) {
	rp, ok := p.(RecordParser[R])
	return Stage[R]{Parser: rp, Vendor: vendor}, ok
}

// Parse resets r and parses line into it, then fills in what the stream
// supplies rather than the line (the vendor). A line that carries no
// record returns ErrSkip; a parser's panic is returned as an error: a
// parser bug costs one line, never the stream.
func (s Stage[R]) Parse(line []byte, r *R) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("parser panic: %v", p)
		}
	}()
	switch r := any(r).(type) {
	case *JobEvent:
		r.Reset()
	case *CDNRequest:
		r.Reset()
	}
	if err := s.Parser.Parse(line, r); err != nil {
		return err
	}
	if r, ok := any(r).(*CDNRequest); ok && r.Vendor == "" {
		r.Vendor = s.Vendor
	}
	return nil
}

// Enrich enriches r in place with e (hashes, path classes and templates,
// redaction).
func (s Stage[R]) Enrich(e *Enricher, r *R) {
	switch r := any(r).(type) {
	case *JobEvent:
		e.Job(r)
	case *CDNRequest:
		e.CDN(r)
	}
}
