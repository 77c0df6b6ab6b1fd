package app

import (
	"crypto/rand"
	"log/slog"

	"github.com/logpipe/logpipe/config"
	"github.com/logpipe/logpipe/transform/redact"
)

// NewRedactor returns the redaction pass of cfg, for text outside records
// (alert bodies). Without a valid hash key (commands that need none) it
// hashes with a random key of this process.
func NewRedactor(cfg config.Config) (*redact.Redactor, error) {
	key := cfg.HashKey()
	if len(key) < 16 {
		key = randomKey()
	}
	return redact.New(cfg.RedactConfig(key))
}

func randomKey() []byte {
	key := make([]byte, 32)
	rand.Read(key)
	return key
}

// RedactError renders the error that stops the process as a log line
// would be: an insert error may quote a value.
func RedactError(err error) string {
	r, rerr := redact.New(redact.Config{Key: randomKey()})
	if rerr != nil {
		return err.Error()
	}
	return r.StringMode(err.Error(), redact.Log)
}

// RedactingLogger wraps a log handler so that no record content reaches
// the log in clear. Its hashes use a random key of this process: they
// tell equal values apart in one process's log, nothing more.
func RedactingLogger(h slog.Handler) *slog.Logger {
	r, err := redact.New(redact.Config{Key: randomKey()})
	if err != nil {
		panic(err) // the key has 32 bytes
	}
	return slog.New(redact.NewHandler(h, r))
}
