package app

import (
	"flag"
	"log/slog"
	"os"
	"time"

	"github.com/logpipe/logpipe/config"
)

// DurationFlag defines a flag in logpipe's one duration syntax
// (config.ParseDuration: 90m, 12h, 1d, 1d12h).
func DurationFlag(fs *flag.FlagSet, name string, value time.Duration, usage string) *time.Duration {
	d := value
	fs.Func(name, usage, func(s string) error {
		v, err := config.ParseDuration(s)
		if err != nil {
			return err
		}
		d = v
		return nil
	})
	return &d
}

// LogLevel is LOGPIPE_LOG_LEVEL (debug, info, warn, error), info when
// unset or unknown.
func LogLevel() slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(os.Getenv("LOGPIPE_LOG_LEVEL"))); err != nil {
		return slog.LevelInfo
	}
	return l
}
