package main

import (
	"bufio"
	"compress/gzip"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	json "github.com/goccy/go-json"

	"github.com/logpipe/logpipe/config"
	"github.com/logpipe/logpipe/transform"
)

// cmdCheck parses lines of a file (or stdin) with one format and prints
// the normalised rows, and for each rejected line its number and why. It
// needs neither Kafka nor ClickHouse. Exit status 1 when any line was
// rejected.
func cmdCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	format := fs.String("format", "", "log format (logpipe formats lists them)")
	asJSON := fs.Bool("json", false, "print rows as JSON lines instead of a summary line per row")
	vendor := fs.String("vendor", "", "vendor label for formats that do not set it")
	logFormat := fs.String("log-format", "", "nginx log_format (format nginx) or Apache LogFormat (format apache)")
	fields := fs.String("fields", "", "CloudFront fields in order, comma- or space-separated (cloudfront-realtime, cloudfront-standard)")
	fieldMap := fs.String("field-map", "", "job log keys, e.g. job=service,run_id=run,exit_code=code (job-json, job-logfmt)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *format == "" || fs.NArg() != 1 {
		return usageError{errors.New("check: want -format NAME and one FILE (or - for stdin)")}
	}
	opts := transform.ParserOptions{LogFormat: *logFormat, Fields: strings.FieldsFunc(*fields, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })}
	if *fieldMap != "" {
		opts.FieldMap = map[string]string{}
		for _, pair := range strings.Split(*fieldMap, ",") {
			k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
			if !ok {
				return usageError{fmt.Errorf("check: -field-map entry %q is not name=key", pair)}
			}
			opts.FieldMap[k] = v
		}
	}
	parser, err := transform.NewParserWith(*format, opts)
	if err != nil {
		return err
	}
	in := io.Reader(os.Stdin)
	if name := fs.Arg(0); name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	// CloudFront and most log shippers deliver gzip files: read them as they are.
	br := bufio.NewReader(in)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("check: %s: %w", fs.Arg(0), err)
		}
		defer zr.Close()
		in = zr
	} else {
		in = br
	}
	// A throwaway key: check shows that hashing happens, not real hashes.
	key := make([]byte, 32)
	rand.Read(key)
	def := config.Default()
	classes := make([]transform.PathClassRule, 0, len(def.Enrich.PathClasses))
	for _, c := range def.Enrich.PathClasses {
		classes = append(classes, transform.PathClassRule{Class: c.Class, Patterns: c.Patterns})
	}
	enr, err := transform.NewEnricher(transform.EnrichConfig{HashKey: key, SessionCookies: def.Enrich.SessionCookies, PathClasses: classes, DropQueryParams: def.Enrich.DropQueryParams})
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), def.Kafka.MaxRecordBytes)
	enc := json.NewEncoder(stdout)
	var ok, bad, n int
	var job transform.JobEvent
	var req transform.CDNRequest
	for sc.Scan() {
		n++
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		var row any
		var perr error
		switch p := parser.(type) {
		case transform.JobParser:
			job.Reset()
			if perr = p.ParseJob(line, &job); perr == nil {
				enr.Job(&job)
				row = job
			}
		case transform.CDNParser:
			req.Reset()
			if perr = p.ParseCDN(line, &req); perr == nil {
				if req.Vendor == "" {
					req.Vendor = *vendor
				}
				enr.CDN(&req)
				row = req
			}
		}
		if errors.Is(perr, transform.ErrSkip) {
			continue
		}
		if perr != nil {
			bad++
			fmt.Fprintf(stderr, "line %d: rejected: %s\n", n, enr.RedactReason(perr.Error(), line))
			continue
		}
		ok++
		if *asJSON {
			enc.Encode(row)
			continue
		}
		switch r := row.(type) {
		case transform.JobEvent:
			fmt.Fprintf(stdout, "line %d: %s job=%s run=%s event=%s host=%s\n", n, r.Time.Format("2006-01-02T15:04:05.000Z"), r.Job, r.RunID, r.Event, r.Host)
		case transform.CDNRequest:
			fmt.Fprintf(stdout, "line %d: %s %s %s %s%s -> %d cache=%s(%s) class=%s template=%s flags=%s\n", n, r.Time.Format("2006-01-02T15:04:05.000Z"), r.Vendor, r.Method, r.Host, r.Path, r.Status, r.CacheStatus, r.CacheRaw, r.PathClass, r.PathTemplate, flags(&r))
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("line %d: %w", n+1, err)
	}
	fmt.Fprintf(stderr, "%d lines parsed, %d rejected\n", ok, bad)
	if bad > 0 {
		return fmt.Errorf("check: %d of %d lines rejected", bad, ok+bad)
	}
	return nil
}

func flags(r *transform.CDNRequest) string {
	var s string
	add := func(on bool, name string) {
		if on {
			if s != "" {
				s += ","
			}
			s += name
		}
	}
	add(r.FlagPersonalCached, "personal_cached")
	add(r.FlagSetCookieCached, "set_cookie_cached")
	add(r.FlagPrivateCached, "private_cached")
	add(r.FlagAuthCached, "auth_cached")
	add(r.FlagTTLZero, "ttl_zero")
	if s == "" {
		return "-"
	}
	return s
}

func cmdFormats(stdout io.Writer) error {
	for _, name := range transform.Formats() {
		p, _ := transform.NewParser(name)
		fmt.Fprintf(stdout, "%-20s %s\n", name, p.Kind())
	}
	return nil
}
