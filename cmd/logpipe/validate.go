package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"

	"github.com/logpipe/logpipe/cmd/internal/app"
	"github.com/logpipe/logpipe/config"
	"github.com/logpipe/logpipe/schedule"
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
	if _, err := schedule.FromConfig(cfg.Schedules); err != nil {
		errs = append(errs, unjoin(errors.Unwrap(err))...)
	}
	errs = append(errs, watch.Check(cfg.Watch, watchFiles)...)
	return errs
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
