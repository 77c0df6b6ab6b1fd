package main

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/logpipe/logpipe/cmd/internal/app"
	"github.com/logpipe/logpipe/config"
	"github.com/logpipe/logpipe/schemas"
	"github.com/logpipe/logpipe/transform"
	"github.com/logpipe/logpipe/warehouse"
	"github.com/logpipe/logpipe/watch"
)

// cmdValidate checks a config file offline (no Kafka, no ClickHouse) and
// prints every error with its field path. Exit status 1 when any.
func cmdValidate(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", os.Getenv("LOGPIPE_CONFIG"), "config file (YAML)")
	files, err := parseInterspersed(fs, args)
	if err != nil {
		return usageError{err}
	}
	if len(files) == 1 && *path == "" {
		*path = files[0]
	} else if len(files) > 0 {
		return usageError{errors.New("validate: want -config FILE")}
	}
	if *path == "" {
		return usageError{errors.New("validate: want -config FILE")}
	}
	cfg, err := config.LoadOnly(*path, os.Environ())
	if err != nil {
		return err
	}
	errs := validationErrors(cfg, true)
	for _, e := range errs {
		fmt.Fprintf(stderr, "%s: %v\n", *path, e)
	}
	if len(errs) > 0 {
		return fmt.Errorf("validate: %s: %d errors", *path, len(errs))
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	fmt.Fprintf(stdout, "%s: valid (%d streams)\n", *path, len(cfg.Streams))
	return nil
}

// validationErrors lists every error of cfg that can be found without a
// connection: config.Validate, then each stream's format and options, the
// enrichment rules, retention, schedules and watch rules and channels.
// watchFiles says whether the watch channels' url_file must be readable
// here (validate: yes; run, which sends no alerts: no).
func validationErrors(cfg config.Config, watchFiles bool) []error {
	var errs []error
	errs = append(errs, unjoin(cfg.Validate())...)
	errs = append(errs, offlineErrors(cfg, watchFiles)...)
	return errs
}

// offlineErrors checks what config.Validate does not: the parts only cmd
// knows (formats, enrichment, retention, schedules, watch).
func offlineErrors(cfg config.Config, watchFiles bool) []error {
	var errs []error
	bad := func(field string, err error) { errs = append(errs, fmt.Errorf("%s: %w", field, err)) }
	for i, s := range cfg.Streams {
		f := fmt.Sprintf("streams[%d]", i)
		if s.Format == "" {
			continue // config.Validate reports it
		}
		if _, err := transform.NewParser(s.Format); err != nil {
			bad(f+".format", err)
			continue
		}
		if s.LogFormat != "" {
			if _, err := transform.NewParserWith(s.Format, transform.ParserOptions{LogFormat: s.LogFormat}); err != nil {
				bad(f+".log_format", err)
			}
		}
		if len(s.Fields) > 0 {
			if _, err := transform.NewParserWith(s.Format, transform.ParserOptions{Fields: s.Fields}); err != nil {
				bad(f+".fields", err)
			}
		}
		if len(s.FieldMap) > 0 {
			if _, err := transform.NewParserWith(s.Format, transform.ParserOptions{FieldMap: s.FieldMap}); err != nil {
				bad(f+".field_map", errors.New(strings.TrimPrefix(err.Error(), "field_map: ")))
			}
		}
	}
	key := []byte("validate-only-key-0123456789abcdef")
	for i, c := range cfg.Enrich.PathClasses {
		if _, err := transform.NewEnricher(transform.EnrichConfig{HashKey: key, PathClasses: []transform.PathClassRule{{Class: c.Class, Patterns: c.Patterns}}}); err != nil {
			bad(fmt.Sprintf("enrich.path_classes[%d]", i), err)
		}
	}
	for i, t := range cfg.Enrich.PathTemplates {
		if _, err := transform.NewEnricher(transform.EnrichConfig{HashKey: key, PathTemplates: []transform.PathTemplateRule{{Match: t.Match, Replace: t.Replace}}}); err != nil {
			bad(fmt.Sprintf("enrich.path_templates[%d].match", i), err)
		}
	}
	for t, age := range cfg.Retention.Tables {
		if _, err := warehouse.ParseAge(age); err != nil {
			bad("retention.tables."+t, err)
		}
	}
	for i := range cfg.Schedules {
		if _, err := app.ParseSchedules(cfg.Schedules[i : i+1]); err != nil {
			msg := strings.TrimPrefix(err.Error(), "config: ")
			msg = strings.Replace(msg, "schedules[0]", fmt.Sprintf("schedules[%d]", i), 1)
			errs = append(errs, errors.New(msg))
		}
	}
	// watch.New stops at its first error: check the channels, then the
	// rules and silences with the channels' names only, so that both get
	// reported.
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	chans := cfg.Watch.Channels
	if !watchFiles {
		chans = append([]config.WatchChannel(nil), chans...)
		for i := range chans {
			if chans[i].URL == "" && chans[i].URLFile != "" {
				chans[i].URL, chans[i].URLFile = "http://url-file.invalid/", ""
			}
		}
	}
	if _, err := watch.NewNotifiers(chans, nil); err != nil {
		errs = append(errs, err)
	}
	w := cfg.Watch
	w.Channels = nil
	for _, c := range cfg.Watch.Channels {
		w.Channels = append(w.Channels, config.WatchChannel{Name: c.Name, Type: "webhook", URL: "http://validate.invalid/"})
	}
	if _, err := watch.New(nil, w, nil, quiet); err != nil && !strings.Contains(err.Error(), "watch.channels[") {
		errs = append(errs, withQueryHint(err, cfg.Watch.Rules))
	}
	return errs
}

// withQueryHint adds the closest catalogue name to an unknown-query
// error of a watch rule (a misspelt rule name).
func withQueryHint(err error, rules []config.WatchRule) error {
	if !strings.Contains(err.Error(), "no query") {
		return err
	}
	qs, qerr := schemas.Queries()
	if qerr != nil {
		return err
	}
	for _, r := range rules {
		name := cmp.Or(r.Query, r.Name)
		if _, lerr := schemas.LookupQuery(name); lerr == nil || !strings.Contains(err.Error(), strconv.Quote(name)) {
			continue
		}
		best, bestD := "", len(name)/2+2
		for _, q := range qs {
			if d := config.EditDistance(name, q.Name); d < bestD {
				best, bestD = q.Name, d
			}
		}
		if best != "" {
			return fmt.Errorf("%w (did you mean %s?)", err, best)
		}
	}
	return err
}

func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func cmdVersion(stdout io.Writer) error {
	v := version
	if bi, ok := debug.ReadBuildInfo(); ok && v == "dev" {
		if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " (" + s.Value[:12] + ")"
			}
		}
	}
	fmt.Fprintf(stdout, "logpipe %s %s\n", v, runtime.Version())
	return nil
}
