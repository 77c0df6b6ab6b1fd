package main

import (
	"bufio"
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	json "github.com/goccy/go-json"

	"github.com/logpipe/logpipe/config"
	"github.com/logpipe/logpipe/tables"
	"github.com/logpipe/logpipe/transform"
)

// cmdCheck parses lines of a file (or stdin) with one format and prints
// the normalised rows, and for each rejected line its number and why. It
// needs neither Kafka nor ClickHouse. It ends with the coverage of the
// fields logpipe uses, and the input keys no field reads. Exit status 1
// when any line was rejected, or when a field the cache-anomaly detection
// needs is missing from every line.
func cmdCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	format := fs.String("format", "", "log format (logpipe formats lists them); default: the stream's in -config")
	asJSON := fs.Bool("json", false, "print each row as stored (ClickHouse column names and values), one JSON object a line")
	vendor := fs.String("vendor", "", "vendor label for formats that do not set it")
	logFormat := fs.String("log-format", "", "nginx log_format (format nginx) or Apache LogFormat (format apache)")
	fields := fs.String("fields", "", "CloudFront fields in order, comma- or space-separated (cloudfront-realtime, cloudfront-standard)")
	fieldMap := fs.String("field-map", "", "which of your keys holds which field, name=key[:unit],... e.g. cache_status=cache_status,duration=time_elapsed:ms (JSON formats; logpipe formats NAME lists the names)")
	cfgPath := fs.String("config", "", "config file: use its enrich settings (path classes and templates, session cookies) and a stream's options")
	streamName := fs.String("stream", "", "with -config: the stream (name or topic) whose format and options to use; default: the only one, or the one with -format")
	allowMissing := fs.Bool("allow-missing", false, "do not fail when a field the cache-anomaly detection needs (cache_status) is missing from every line")
	files, err := parseInterspersed(fs, args)
	if err != nil {
		return usageError{err}
	}
	if len(files) != 1 {
		return usageError{errors.New("check: want -format NAME (or -config FILE) and one FILE (or - for stdin)")}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	def := config.Default()
	opts := transform.ParserOptions{}
	if *cfgPath != "" {
		cfg, st, err := checkConfigFile(*cfgPath, *streamName, *format)
		if err != nil {
			return err
		}
		def = cfg
		if st != nil {
			if *format == "" {
				*format = st.Format
			}
			if !set["vendor"] {
				*vendor = st.Vendor
			}
			opts = st.ParserOptions()
		}
	} else if *streamName != "" {
		return usageError{errors.New("check: -stream needs -config")}
	}
	if *format == "" {
		return usageError{errors.New("check: want -format NAME (or -config FILE with a stream)")}
	}
	if set["log-format"] {
		opts.LogFormat = *logFormat
	}
	if set["fields"] {
		opts.Fields = strings.FieldsFunc(*fields, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
	}
	if set["field-map"] {
		m, err := transform.ParseFieldMap(*fieldMap)
		if err != nil {
			return usageError{fmt.Errorf("check: -field-map: %w", err)}
		}
		opts.FieldMap = m
	}
	parser, err := transform.NewParserWith(*format, opts)
	if err != nil {
		return err
	}
	name := files[0]
	in := io.Reader(os.Stdin)
	if name != "-" {
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
			return fmt.Errorf("check: %s: %w", name, err)
		}
		defer zr.Close()
		in = zr
	} else {
		in = br
	}
	// A throwaway key: check shows that hashing happens, not real hashes.
	key := make([]byte, 32)
	rand.Read(key)
	// The config's enrichment and redaction, as run applies them.
	ec := def.EnrichConfig()
	ec.HashKey = key
	enr, err := transform.NewEnricher(ec)
	if err != nil {
		return fmt.Errorf("check: enrich: %w", err)
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), def.Kafka.MaxRecordBytes)
	var ok, bad, skipped, n int
	now := time.Now().UTC()
	cov := newCoverage(*format, parser)
	var check lineCheck
	switch parser.Kind() {
	case transform.KindJob:
		check, err = newLineCheck(parser, *vendor, enr, tables.NewJobEvents(), func(r *transform.JobEvent, _ []byte) { cov.addJob(r) }, showJob)
	case transform.KindCDN:
		check, err = newLineCheck(parser, *vendor, enr, tables.NewCDNRequests(), cov.add, showCDN)
	default:
		err = fmt.Errorf("format %s makes records of kind %s", *format, parser.Kind())
	}
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}
	for sc.Scan() {
		n++
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			skipped++
			continue
		}
		row, shown, perr := check(line, tables.Meta{Topic: "check", Offset: int64(n)}, now)
		if errors.Is(perr, transform.ErrSkip) {
			skipped++
			continue
		}
		if perr != nil {
			bad++
			fmt.Fprintf(stderr, "line %d: rejected: %s\n", n, enr.RedactReason(perr.Error(), line))
			continue
		}
		ok++
		if *asJSON {
			writeRow(stdout, row)
			continue
		}
		fmt.Fprintf(stdout, "line %d: %s\n", n, shown)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("line %d: %w", n+1, err)
	}
	missing := cov.report(stderr)
	fmt.Fprintf(stderr, "%d lines parsed, %d rejected, %d skipped\n", ok, bad, skipped)
	var errs []error
	if bad > 0 {
		errs = append(errs, fmt.Errorf("check: %d of %d lines rejected", bad, ok+bad))
	}
	if len(missing) > 0 && !*allowMissing {
		name := cov.mapName(missing[0])
		how := fmt.Sprintf("map your key with -field-map %s=YOUR_KEY", name)
		if k := cov.suggestedKey(name); k != "" {
			how = fmt.Sprintf("map your key with -field-map %s=%s (suggested)", name, k)
		}
		errs = append(errs, fmt.Errorf("check: %s found in no line: the cache-anomaly (leak) detection needs it; %s, or log it (logpipe formats %s -vendor-config); -allow-missing accepts the log as it is", strings.Join(missing, ", "), how, *format))
	}
	return errors.Join(errs...)
}

// lineCheck parses and enriches one line as the pipeline does, and
// returns its row as the INSERT sends it and a summary to show.
type lineCheck func(line []byte, meta tables.Meta, now time.Time) (row []tables.Value, shown string, err error)

// checkTable is a batch of the table of records of kind R.
type checkTable[R transform.Record] interface {
	tables.Batch
	Reset()
	Append(r *R, m tables.Meta, now time.Time, rawBytes int)
}

// newLineCheck returns the lineCheck of parser p, which makes records of
// kind R: each goes through transform.Stage (the pipeline's path), then
// to observe, into table and to show.
func newLineCheck[R transform.Record](p transform.Parser, vendor string, enr *transform.Enricher, table checkTable[R], observe func(r *R, line []byte), show func(r *R) string) (lineCheck, error) {
	stage, ok := transform.NewStage[R](p, vendor)
	if !ok {
		return nil, fmt.Errorf("%T parses no records of its kind", p)
	}
	var r R
	return func(line []byte, meta tables.Meta, now time.Time) ([]tables.Value, string, error) {
		if err := stage.Parse(line, &r); err != nil {
			return nil, "", err
		}
		stage.Enrich(enr, &r)
		observe(&r, line)
		table.Reset()
		table.Append(&r, meta, now, len(line))
		return tables.Row(table, 0), show(&r), nil
	}, nil
}

func showJob(r *transform.JobEvent) string {
	return fmt.Sprintf("%s job=%s run=%s event=%s host=%s", r.Time.Format("2006-01-02T15:04:05.000Z"), r.Job, r.RunID, r.Event, r.Host)
}

func showCDN(r *transform.CDNRequest) string {
	return fmt.Sprintf("%s %s %s %s%s -> %d cache=%s(%s) class=%s template=%s flags=%s", r.Time.Format("2006-01-02T15:04:05.000Z"), r.Vendor, r.Method, r.Host, r.Path, r.Status, r.CacheStatus, r.CacheRaw, r.PathClass, r.PathTemplate, flags(r))
}

// parseInterspersed parses flags that may come before or after the
// positional arguments, which it returns.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// checkConfigFile reads a config file for check: the file over the
// defaults with the LOGPIPE_* overrides, as run reads it, but without
// requiring what only run needs (brokers, hash key); and picks the stream
// to check.
func checkConfigFile(path, streamName, format string) (config.Config, *config.Stream, error) {
	cfg := config.Default()
	b, err := os.ReadFile(path)
	if err != nil {
		return cfg, nil, fmt.Errorf("check: %w", err)
	}
	if err := config.Parse(b, &cfg); err != nil {
		return cfg, nil, fmt.Errorf("check: config %s: %w", path, err)
	}
	if err := config.ApplyEnv(&cfg, os.Environ()); err != nil {
		return cfg, nil, fmt.Errorf("check: config: %w", err)
	}
	var match []*config.Stream
	for i := range cfg.Streams {
		s := &cfg.Streams[i]
		switch {
		case streamName != "":
			if s.Name == streamName || s.Topic == streamName {
				match = append(match, s)
			}
		case format != "":
			if s.Format == format {
				match = append(match, s)
			}
		default:
			match = append(match, s)
		}
	}
	switch {
	case len(match) == 1:
		return cfg, match[0], nil
	case streamName != "":
		return cfg, nil, fmt.Errorf("check: config %s has no stream %q", path, streamName)
	case format != "":
		return cfg, nil, nil // only the enrich settings apply
	case len(match) == 0:
		return cfg, nil, fmt.Errorf("check: config %s has no streams: give -format", path)
	}
	names := make([]string, len(match))
	for i, s := range match {
		names[i] = cmp.Or(s.Name, s.Topic)
	}
	return cfg, nil, usageError{fmt.Errorf("check: config %s has %d streams (%s): pick one with -stream", path, len(match), strings.Join(names, ", "))}
}

// writeRow prints a row as one JSON object, columns in table order;
// Kafka bookkeeping columns (_topic, ...) are left out.
func writeRow(w io.Writer, row []tables.Value) {
	var b bytes.Buffer
	b.WriteByte('{')
	first := true
	for _, v := range row {
		if strings.HasPrefix(v.Column, "_") {
			continue
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		k, _ := json.Marshal(v.Column)
		b.Write(k)
		b.WriteByte(':')
		var val []byte
		switch x := v.Value.(type) {
		case time.Time:
			val, _ = json.Marshal(x.UTC().Format("2006-01-02 15:04:05"))
		default:
			val, _ = json.Marshal(x)
		}
		b.Write(val)
	}
	b.WriteString("}\n")
	w.Write(b.Bytes())
}

// coverage counts, per field logpipe uses, the lines it was found in,
// and the input keys no field reads.
type coverage struct {
	format string
	cdn    bool
	read   map[string]string // key -> field name (JSON formats)
	found  [transform.CovCount]int
	unread map[string]int
	lines  int
	// Job formats: lines per field, in jobFields order.
	jobFound [len(jobFields)]int
}

// jobFields are the job_events fields check reports for job formats: a
// line whose event is "log" did not say started/finished/failed, so the
// run tables cannot use it.
var jobFields = [...]struct {
	name string
	has  func(e *transform.JobEvent) bool
}{
	{"time", func(e *transform.JobEvent) bool { return !e.Time.IsZero() }},
	{"job", func(e *transform.JobEvent) bool { return e.Job != "" }},
	{"run_id", func(e *transform.JobEvent) bool { return e.RunID != "" }},
	{"event (not log)", func(e *transform.JobEvent) bool { return e.Event != transform.EventLog }},
	{"scheduled_time", func(e *transform.JobEvent) bool { return !e.ScheduledTime.IsZero() }},
	{"host", func(e *transform.JobEvent) bool { return e.Host != "" }},
	{"exit_code", func(e *transform.JobEvent) bool { return e.HasExitCode }},
	{"error", func(e *transform.JobEvent) bool { return e.Error != "" || e.ErrorClass != "" }},
	{"step", func(e *transform.JobEvent) bool { return e.Step != "" }},
	{"duration_ms", func(e *transform.JobEvent) bool { return e.DurationMs != 0 }},
}

func (c *coverage) addJob(e *transform.JobEvent) {
	c.lines++
	for i, f := range jobFields {
		if f.has(e) {
			c.jobFound[i]++
		}
	}
}

func newCoverage(format string, p transform.Parser) *coverage {
	return &coverage{format: format, cdn: p.Kind() == transform.KindCDN, read: transform.ReadKeys(p), unread: map[string]int{}}
}

func (c *coverage) add(r *transform.CDNRequest, line []byte) {
	var found [transform.CovCount]bool
	transform.CDNCoverage(r, &found)
	for f, ok := range found {
		if ok {
			c.found[f]++
		}
	}
	c.lines++
	if c.read == nil {
		return
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(line, &obj) != nil {
		return
	}
	for k := range obj {
		if _, ok := c.read[k]; !ok {
			c.unread[k]++
		}
	}
}

// mapName is the field_map name of a coverage field for this format.
func (c *coverage) mapName(field string) string {
	switch field {
	case "origin_time":
		return "origin_ms"
	case "session_cookie":
		return "cookie"
	case "path":
		if _, ok := transform.DefaultKeys(c.format)["url"]; ok {
			return "url"
		}
	}
	return field
}

// keyOf names the input key a field is read from, "" when unknown.
func (c *coverage) keyOf(field string) string {
	name := c.mapName(field)
	var keys []string
	for k, n := range c.read {
		if n == name {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return strings.Join(keys, ", ")
}

// report prints the coverage table and returns the detection fields found
// in no line.
func (c *coverage) report(w io.Writer) (missing []string) {
	if c.lines == 0 {
		return nil
	}
	if !c.cdn {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "\nfield\tlines found\n")
		for i, f := range jobFields {
			fmt.Fprintf(tw, "%s\t%d/%d\n", f.name, c.jobFound[i], c.lines)
		}
		tw.Flush()
		if c.jobFound[3] == 0 {
			fmt.Fprintf(w, "no line says started, finished or failed: the run tables (job_runs, failed and missed runs) cannot use these events; map the key that holds it with -field-map event=KEY\n")
		}
		fmt.Fprintln(w)
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "\nfield\tlines found\t")
	if c.read != nil {
		fmt.Fprintf(tw, "key")
	}
	fmt.Fprintln(tw)
	for f := 0; f < transform.CovCount; f++ {
		name := transform.CoverageName(f)
		note := ""
		if c.read != nil {
			note = c.keyOf(name)
		}
		if c.found[f] == 0 && transform.DetectionField(f) {
			missing = append(missing, name)
			note += "  <- MISSING: the leak detection needs it"
		}
		fmt.Fprintf(tw, "%s\t%d/%d\t%s\n", name, c.found[f], c.lines, note)
	}
	tw.Flush()
	if len(c.unread) > 0 {
		fmt.Fprintf(w, "\nkeys no field reads (-field-map NAME=KEY maps one):\n")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, k := range sortedCounts(c.unread) {
			hint := ""
			if s := transform.SuggestField(c.format, k); s != "" {
				hint = "suggested: -field-map " + s + "=" + k
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", k, plural(c.unread[k], "line"), hint)
		}
		tw.Flush()
	}
	fmt.Fprintln(w)
	return missing
}

// suggestedKey is the most frequent unread key suggested for a field_map
// name, "" when none.
func (c *coverage) suggestedKey(name string) string {
	for _, k := range sortedCounts(c.unread) {
		if transform.SuggestField(c.format, k) == name {
			return k
		}
	}
	return ""
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// sortedCounts lists m's keys, most frequent first.
func sortedCounts(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	return keys
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

// cmdFormats lists the formats; with a name, the format's field_map names
// and default keys; with -vendor-config, what to configure on the
// vendor's side (transform.VendorConfigFor).
func cmdFormats(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("formats", flag.ContinueOnError)
	fs.SetOutput(stderr)
	vendorCfg := fs.Bool("vendor-config", false, "print the vendor-side config (log format string, field list) that gives logpipe every field it uses")
	names, err := parseInterspersed(fs, args)
	if err != nil {
		return usageError{err}
	}
	if len(names) == 0 {
		if *vendorCfg {
			return usageError{errors.New("formats: -vendor-config needs a format name")}
		}
		for _, name := range transform.Formats() {
			p, _ := transform.NewParser(name)
			fmt.Fprintf(stdout, "%-20s %s\n", name, p.Kind())
		}
		return nil
	}
	if len(names) > 1 {
		return usageError{errors.New("formats: want one format name")}
	}
	name := names[0]
	p, err := transform.NewParser(name)
	if err != nil {
		return usageError{err}
	}
	if *vendorCfg {
		vc, err := transform.VendorConfigFor(name)
		if err != nil {
			return err
		}
		fmt.Fprint(stdout, vc.Text)
		return nil
	}
	fmt.Fprintf(stdout, "%s (%s records)\n", name, p.Kind())
	fm := transform.FieldMapNames(name)
	if fm == nil {
		fmt.Fprintln(stdout, "takes no field_map")
	} else {
		fmt.Fprintln(stdout, "field_map names (name=YOUR_KEY, or name=YOUR_KEY:UNIT with UNIT us, ms, s, ns or rfc3339 for durations and times):")
		keys := transform.DefaultKeys(name)
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		for _, n := range fm {
			if k, ok := keys[n]; ok {
				fmt.Fprintf(tw, "  %s\tdefault key %s\n", n, k)
			} else {
				fmt.Fprintf(tw, "  %s\n", n)
			}
		}
		tw.Flush()
	}
	if _, err := transform.VendorConfigFor(name); err == nil {
		fmt.Fprintf(stdout, "vendor-side config: logpipe formats %s -vendor-config\n", name)
	}
	return nil
}
