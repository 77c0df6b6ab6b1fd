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

// offlineErrors checks what config.Validate does not, with the checks of
// the packages that own each setting — the same ones run's constructors
// apply: each stream's format and options (transform.CheckParser), the
// enrichment rules (transform.EnrichConfig.Check), the TLS files,
// retention, schedules, and the watch rules and channels.
func offlineErrors(cfg config.Config, watchFiles bool) []error {
	var errs []error
	for i, s := range cfg.Streams {
		if s.Format == "" {
			continue // config.Validate reports it
		}
		errs = append(errs, fieldErrors(fmt.Sprintf("streams[%d]", i), transform.CheckParser(s.Format, s.ParserOptions()))...)
	}
	errs = append(errs, fieldErrors("enrich", cfg.EnrichConfig().Check())...)
	if _, err := cfg.ClickHouse.TLS.Config(); err != nil {
		errs = append(errs, fmt.Errorf("clickhouse.%w", err))
	}
	if _, err := cfg.Kafka.TLS.Config(); err != nil {
		errs = append(errs, fmt.Errorf("kafka.%w", err))
	}
	if _, err := app.RetentionRules(cfg); err != nil {
		errs = append(errs, unjoin(errors.Unwrap(err))...)
	}
	if _, err := app.ParseSchedules(cfg.Schedules); err != nil {
		errs = append(errs, unjoin(errors.Unwrap(err))...)
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

// fieldErrors names each of a package's option errors by its path in the
// config file.
func fieldErrors(prefix string, errs []error) []error {
	out := make([]error, len(errs))
	for i, err := range errs {
		out[i] = fmt.Errorf("%s.%w", prefix, err)
	}
	return out
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
