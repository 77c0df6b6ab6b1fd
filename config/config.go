// Package config loads and validates logpipe's configuration: one YAML file
// whose every field can be overridden by an environment variable.
//
// The environment variable for a field is LOGPIPE_ followed by the YAML path
// in upper case with dots and dashes turned into underscores, for example
// LOGPIPE_CLICKHOUSE_ADDR or LOGPIPE_BATCH_MAX_ROWS. Streams are addressed by
// their index: LOGPIPE_STREAMS_0_TOPIC.
package config

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/logpipe/logpipe/transform/redact"
)

// Config is the whole configuration of a logpipe process.
type Config struct {
	Kafka      Kafka      `yaml:"kafka"`
	ClickHouse ClickHouse `yaml:"clickhouse"`
	Batch      Batch      `yaml:"batch"`
	Hash       Hash       `yaml:"hash"`
	Streams    []Stream   `yaml:"streams"`
	Enrich     Enrich     `yaml:"enrich"`
	// Redact configures the redaction of secrets in every stored,
	// logged or sent value (docs/operations.md, "What is redacted").
	Redact Redact `yaml:"redact"`
	// Schedules say when each job is expected to run (logpipe schedules
	// sync writes the expected run times for missed-run detection).
	Schedules []JobSchedule `yaml:"schedules"`
	Retention Retention     `yaml:"retention"`
	// Memory bounds what the process buffers (docs/operations.md,
	// "Memory budget").
	Memory Memory `yaml:"memory"`

	// HTTP serves /metrics, /healthz and /readyz (logpipe run).
	HTTP HTTP `yaml:"http"`
	// Watch configures logpipe watch: catalogue queries run on a
	// schedule, each result row an alert.
	Watch Watch `yaml:"watch"`
	// Detect configures the streaming leak detector of logpipe run
	// (alerts through the watch channels).
	Detect Detect `yaml:"detect"`

	// Warnings found while loading (not errors), for the caller to log.
	Warnings []string `yaml:"-"`
}

// Memory is the process's one memory budget: the bytes of every record
// fetched, queued, parsed and buffered in batches, over all partitions.
type Memory struct {
	// Limit is the budget in bytes; 0 derives it: 25% of GOMEMLIMIT, else
	// of the cgroup memory limit, else 96 MiB.
	Limit int64 `yaml:"limit"`
}

// Retention says how long rows are kept, per table ("30d", "12h").
// Tables not listed are kept forever. `logpipe run` applies it every
// Interval; `logpipe retention` shows (and with -apply does) the same.
type Retention struct {
	Tables   map[string]string `yaml:"tables"`
	Interval time.Duration     `yaml:"interval"`
}

// HTTP configures the metrics and health server.
type HTTP struct {
	// Listen is host:port, e.g. "127.0.0.1:9464"; empty = no server.
	Listen string `yaml:"listen"`
}

// Watch configures logpipe watch.
type Watch struct {
	// Interval is how often every rule runs; default 1m.
	Interval time.Duration `yaml:"interval"`
	// Renotify is how long an alert stays open before it is sent again;
	// default 4h.
	Renotify time.Duration `yaml:"renotify"`
	// Channels are where alerts go.
	Channels []WatchChannel `yaml:"channels"`
	// Rules replace the default rules when not empty.
	Rules []WatchRule `yaml:"rules"`
	// Silence stops notifications for a rule (optionally one alert key)
	// until a time; alerts are still tracked and resolved.
	Silence []WatchSilence `yaml:"silence"`
	// MinSeverity is the lowest severity that is sent (info, warning,
	// critical); lower alerts are only kept in the alerts table. Default
	// warning.
	MinSeverity string `yaml:"min_severity"`
	// RulesDir holds user rules, one catalogue-format query per NAME.sql
	// file (header lines "-- severity:" and "-- key:" optional), loaded
	// beside the built-in rules.
	RulesDir string `yaml:"rules_dir"`
}

// Detect configures the streaming leak detector (docs/operations.md,
// "What counts as a leak").
type Detect struct {
	// Disabled turns it off; it runs in logpipe run by default.
	Disabled bool `yaml:"disabled"`
	// MaxObjects bounds the cache keys remembered (LRU); default 100000.
	MaxObjects int `yaml:"max_objects"`
	// Window: origin answers for different sessions that differ within it
	// are evidence of personalisation; default 1m.
	Window time.Duration `yaml:"window"`
	// MinSessions that received someone else's object before a template
	// alerts; default 1.
	MinSessions int `yaml:"min_sessions"`
	// BodySessions: origin fetches for this many sessions with as many
	// different body sizes within Window show that the origin personalises
	// a URL (two sessions with different strong ETags always do);
	// default 4.
	BodySessions int `yaml:"body_sessions"`
	// UpdateEvery is the shortest time between two notifications of a
	// growing alert; default 1m.
	UpdateEvery time.Duration `yaml:"update_every"`
	// Channels are watch channel names; empty = every channel.
	Channels []string `yaml:"channels"`
}

// WatchChannel is one notification target.
type WatchChannel struct {
	Name string `yaml:"name"`
	// Type is "webhook" (generic JSON) or "slack" (incoming webhook,
	// {"text": ...}).
	Type string `yaml:"type"`
	URL  string `yaml:"url"`
	// URLFile, when set, is read for the URL (webhook URLs are secrets).
	URLFile string `yaml:"url_file"`
}

// WatchRule is one alert rule: a catalogue query whose rows are alerts.
type WatchRule struct {
	Name  string `yaml:"name"`
	Query string `yaml:"query"` // catalogue name; default = Name
	// Params bind the query's parameters; DateTime values may be "now",
	// "now-1h", "now+1d" (relative to the watch clock).
	Params   map[string]string `yaml:"params"`
	Severity string            `yaml:"severity"` // info | warning | critical
	// Channels are channel names; empty = every channel.
	Channels []string `yaml:"channels"`
	// Key lists the columns that identify one alert; default: the first
	// two columns of the result.
	Key []string `yaml:"key"`
}

// WatchSilence mutes notifications.
type WatchSilence struct {
	Rule string `yaml:"rule"` // empty = every rule
	Key  string `yaml:"key"`  // empty = every alert of the rule
	// Template mutes the alerts about one path template (/items/:id),
	// Class those about a path class (an alert row's path_class), Host
	// those about one host. The streaming leak detector honours them too.
	Template string    `yaml:"template"`
	Class    string    `yaml:"class"`
	Host     string    `yaml:"host"`
	Until    time.Time `yaml:"until"`
	// Reason is for the humans reading the config.
	Reason string `yaml:"reason"`
}

// JobSchedule is when one job should run.
type JobSchedule struct {
	Job string `yaml:"job"`
	// Cron is a 5-field cron expression or "@every 15m", "@hourly", "@daily".
	Cron     string `yaml:"cron"`
	Timezone string `yaml:"timezone"` // IANA zone the cron fields are read in; default UTC
	// Calendar is "all" (default) or "business-days" (Monday to Friday,
	// minus Holidays).
	Calendar string        `yaml:"calendar"`
	Holidays []string      `yaml:"holidays"` // 2006-01-02 dates in Timezone
	Grace    time.Duration `yaml:"grace"`    // allowed start delay before a run counts as missed; default 10m
	Expected time.Duration `yaml:"expected"` // expected duration, for documentation and overrun checks
}

// Kafka says where to consume from.
type Kafka struct {
	Brokers []string `yaml:"brokers"`
	Group   string   `yaml:"group"`
	// StartOffset is where a partition without a committed offset starts:
	// "earliest" (default) or "latest".
	StartOffset string `yaml:"start_offset"`
	// MaxRecordBytes is the largest record accepted; larger ones go to
	// ingest_errors with their first bytes only.
	MaxRecordBytes int `yaml:"max_record_bytes"`
	// FetchMaxBytes bounds one fetch of one partition.
	FetchMaxBytes int `yaml:"fetch_max_bytes"`
	// FetchMaxWait bounds how long a fetch waits for data.
	FetchMaxWait time.Duration `yaml:"fetch_max_wait"`
	// SessionTimeout is how long the group waits for a silent member
	// (e.g. a killed process) before giving its partitions to others.
	SessionTimeout time.Duration `yaml:"session_timeout"`
	// RebalanceTimeout bounds how long a rebalance waits for members.
	RebalanceTimeout time.Duration `yaml:"rebalance_timeout"`
	TLS              TLS           `yaml:"tls"`
	SASL             SASL          `yaml:"sasl"`
}

// TLS configures a TLS client connection.
type TLS struct {
	Enabled bool   `yaml:"enabled"`
	CAFile  string `yaml:"ca_file"`   // PEM CA bundle; empty = system roots
	Cert    string `yaml:"cert_file"` // client certificate (mutual TLS)
	Key     string `yaml:"key_file"`
	// ServerName overrides the name checked in the server's certificate.
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// SASL configures Kafka authentication.
type SASL struct {
	// Mechanism is "", "plain", "scram-sha-256" or "scram-sha-512".
	Mechanism    string `yaml:"mechanism"`
	Username     string `yaml:"username"`
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
}

// ClickHouse says where to write.
type ClickHouse struct {
	Addr     []string `yaml:"addr"`
	Database string   `yaml:"database"`
	User     string   `yaml:"user"`
	Password string   `yaml:"password"`
	// PasswordFile, when set, is read for the password (trailing newline
	// trimmed), so that the secret lives outside the config file.
	PasswordFile string        `yaml:"password_file"`
	DialTimeout  time.Duration `yaml:"dial_timeout"`
	TLS          TLS           `yaml:"tls"`
	// InsertTimeout bounds one INSERT, retries excluded.
	InsertTimeout time.Duration `yaml:"insert_timeout"`
	// Cluster, when set, is the ClickHouse cluster (remote_servers) the
	// tables are spread over: migrations create replicated local tables
	// and Distributed tables under the analysts' names (docs/operations.md,
	// "Cluster and Kubernetes").
	Cluster string `yaml:"cluster"`
}

// Batch bounds what is buffered before an INSERT. A batch is flushed when
// any limit is reached.
type Batch struct {
	MaxRows  int           `yaml:"max_rows"`
	MaxBytes int           `yaml:"max_bytes"`
	MaxAge   time.Duration `yaml:"max_age"`
	// RetryMax is the longest pause between two attempts at an INSERT.
	RetryMax time.Duration `yaml:"retry_max"`
}

// Hash holds the key of the keyed hash (HMAC-SHA256) applied to cookies,
// tokens and client IP addresses before they are stored.
type Hash struct {
	// Key is the key itself (at least 16 bytes); prefer KeyFile or the
	// LOGPIPE_HASH_KEY environment variable over writing it here.
	Key string `yaml:"key"`
	// KeyFile is a file holding the key.
	KeyFile string `yaml:"key_file"`
}

// Stream maps one Kafka topic to a format and a ClickHouse table.
type Stream struct {
	Name   string `yaml:"name"`
	Topic  string `yaml:"topic"`
	Format string `yaml:"format"`
	// Vendor labels CDN rows (fastly, cloudfront, ...); formats that know
	// their vendor set it themselves.
	Vendor string `yaml:"vendor"`
	// LogFormat is the nginx log_format (format "nginx") or Apache
	// LogFormat (format "apache") the lines were written with.
	LogFormat string `yaml:"log_format"`
	// Fields lists CloudFront's tab-separated fields in order (formats
	// "cloudfront-realtime", "cloudfront-standard"), as configured in the
	// real-time log configuration.
	Fields []string `yaml:"fields"`
	// FieldMap says which keys of a job log mean job, run_id, event,
	// exit_code, ... (formats "job-json", "job-logfmt").
	FieldMap map[string]string `yaml:"field_map"`
}

// Enrich configures the enrichment of CDN requests.
type Enrich struct {
	// SessionCookies are the cookie names whose value identifies a session.
	SessionCookies []string `yaml:"session_cookies"`
	// PathClasses assign a class (e.g. "personal") to path patterns. The
	// first matching rule wins. A pattern is a path prefix, or a prefix
	// ending in "*".
	PathClasses []PathClass `yaml:"path_classes"`
	// DropQueryParams are query-string parameters removed before storage
	// (tokens, e-mail addresses, ...).
	DropQueryParams []string `yaml:"drop_query_params"`
	// PathTemplates are user rules tried before the built-in id rules:
	// a regular expression and its replacement.
	PathTemplates []PathTemplate `yaml:"path_templates"`
}

// PathClass is one path-classification rule.
type PathClass struct {
	Class    string   `yaml:"class"`
	Patterns []string `yaml:"patterns"`
}

// Redact configures the redaction pass. The built-in detectors (IP and
// e-mail addresses, JWTs, API keys, cookies, Authorization, secret
// parameters) always run; these settings extend them.
type Redact struct {
	// SecretParams are parameter and key names whose values are removed
	// wherever they appear (URLs, JSON, logfmt, headers). Empty = the
	// built-in list (token, access_token, refresh_token, id_token, code,
	// key, api_key, apikey, secret, password, passwd, sig, signature, ...).
	SecretParams []string `yaml:"secret_params"`
	// Patterns are extra regular expressions: each match is removed
	// ([redacted:NAME]) or, with hash: true, replaced by its keyed hash.
	Patterns []RedactPattern `yaml:"patterns"`
	// DeadLetterRaw says what ingest_errors.raw keeps of a rejected line:
	// "redacted" (default: the line, redacted) or "none" (only the keyed
	// hash of the line; the length is in raw_size).
	DeadLetterRaw string `yaml:"dead_letter_raw"`
}

// RedactPattern is one user redaction pattern.
type RedactPattern struct {
	Name   string `yaml:"name"`
	Regexp string `yaml:"regexp"`
	Hash   bool   `yaml:"hash"`
}

// PathTemplate is one user rule that turns paths into templates.
type PathTemplate struct {
	Match   string `yaml:"match"`
	Replace string `yaml:"replace"`
}

// Default returns the configuration used where the file says nothing.
func Default() Config {
	return Config{
		Kafka: Kafka{
			Group:            "logpipe",
			StartOffset:      "earliest",
			MaxRecordBytes:   1 << 20,
			FetchMaxBytes:    16 << 20,
			FetchMaxWait:     500 * time.Millisecond,
			SessionTimeout:   10 * time.Second,
			RebalanceTimeout: 30 * time.Second,
		},
		ClickHouse: ClickHouse{
			Addr:          []string{"127.0.0.1:9000"},
			Database:      "logpipe",
			User:          "default",
			DialTimeout:   5 * time.Second,
			InsertTimeout: 60 * time.Second,
		},
		Batch: Batch{
			MaxRows:  100_000,
			MaxBytes: 32 << 20,
			MaxAge:   time.Second,
			RetryMax: 30 * time.Second,
		},
		Enrich: Enrich{
			SessionCookies: []string{"session", "sessionid", "session_id", "sid", "PHPSESSID", "JSESSIONID", "_session"},
			PathClasses: []PathClass{
				{Class: "personal", Patterns: []string{"/mypage*", "/my/*", "/account*", "/transaction*", "/api/users/me*", "/settings*", "/orders*", "/cart*", "/checkout*"}},
				{Class: "auth", Patterns: []string{"/login*", "/logout*", "/signup*", "/oauth*", "/auth*"}},
				{Class: "api", Patterns: []string{"/api/*"}},
			},
			DropQueryParams: []string{"token", "access_token", "id_token", "code", "password", "email", "mail", "key", "api_key", "apikey", "signature", "sig", "session", "sessionid"},
		},
	}
}

// Load reads the YAML file at path (if path is not empty) over the
// defaults, applies environment overrides from env (use os.Environ), reads
// secret files, and validates the result.
func Load(path string, env []string) (Config, error) {
	return load(path, env, Config.Validate)
}

// LoadOnly is Load without validation, for callers that collect every
// error themselves (logpipe validate).
func LoadOnly(path string, env []string) (Config, error) {
	return load(path, env, func(Config) error { return nil })
}

// LoadClickHouse is Load for commands that only talk to ClickHouse
// (migrate, query, ...): only the clickhouse section must be valid.
func LoadClickHouse(path string, env []string) (Config, error) {
	return load(path, env, Config.ValidateClickHouse)
}

func load(path string, env []string, validate func(Config) error) (Config, error) {
	cfg := Default()
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("config: %w", err)
		}
		if err := Parse(b, &cfg); err != nil {
			return cfg, fmt.Errorf("config %s: %w", path, err)
		}
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 && cfg.SecretsInFile(b) {
			cfg.Warnings = append(cfg.Warnings, fmt.Sprintf("config %s holds secrets and is readable by group or others (mode %v): chmod 600 it, or move the secrets to *_file settings or LOGPIPE_* variables", path, fi.Mode().Perm()))
		}
	}
	if err := ApplyEnv(&cfg, env); err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	if err := cfg.readSecrets(); err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	if err := validate(cfg); err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	return cfg, nil
}

// ValidateClickHouse checks the clickhouse section only.
func (c Config) ValidateClickHouse() error {
	var errs []error
	if len(c.ClickHouse.Addr) == 0 {
		errs = append(errs, errors.New("clickhouse.addr: at least one address is required"))
	}
	if !validIdent(c.ClickHouse.Database) {
		errs = append(errs, fmt.Errorf("clickhouse.database: %q is not a valid database name (letters, digits, _)", c.ClickHouse.Database))
	}
	if c.ClickHouse.Cluster != "" && !validIdent(c.ClickHouse.Cluster) {
		errs = append(errs, fmt.Errorf("clickhouse.cluster: %q is not a valid cluster name (letters, digits, _)", c.ClickHouse.Cluster))
	}
	return errors.Join(errs...)
}

// Parse decodes YAML into cfg strictly: unknown fields are errors.
// Durations may be written with days and weeks (ParseDuration).
func Parse(b []byte, cfg *Config) error {
	b = dayDurations(b, reflect.TypeOf(cfg).Elem())
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) { // io.EOF: empty file
		return err
	}
	return nil
}

func (c *Config) readSecrets() error {
	if c.Hash.KeyFile != "" && c.Hash.Key == "" {
		b, err := os.ReadFile(c.Hash.KeyFile)
		if err != nil {
			return fmt.Errorf("hash.key_file: %w", err)
		}
		c.Hash.Key = strings.TrimRight(string(b), "\r\n")
	}
	if c.Kafka.SASL.PasswordFile != "" && c.Kafka.SASL.Password == "" {
		b, err := os.ReadFile(c.Kafka.SASL.PasswordFile)
		if err != nil {
			return fmt.Errorf("kafka.sasl.password_file: %w", err)
		}
		c.Kafka.SASL.Password = strings.TrimRight(string(b), "\r\n")
	}
	if c.ClickHouse.PasswordFile != "" && c.ClickHouse.Password == "" {
		b, err := os.ReadFile(c.ClickHouse.PasswordFile)
		if err != nil {
			return fmt.Errorf("clickhouse.password_file: %w", err)
		}
		c.ClickHouse.Password = strings.TrimRight(string(b), "\r\n")
	}
	return nil
}

// SecretsInFile reports whether the YAML file itself holds a secret (hash
// key, passwords), so that its permissions matter.
func (c Config) SecretsInFile(raw []byte) bool {
	var f struct {
		Hash       struct{ Key string }      `yaml:"hash"`
		ClickHouse struct{ Password string } `yaml:"clickhouse"`
		Kafka      struct {
			SASL struct{ Password string } `yaml:"sasl"`
		} `yaml:"kafka"`
	}
	if yaml.Unmarshal(raw, &f) != nil {
		return false
	}
	return f.Hash.Key != "" || f.ClickHouse.Password != "" || f.Kafka.SASL.Password != ""
}

// HashKey returns the hash key as bytes: hex-decoded when it is hex,
// otherwise the string's bytes.
func (c Config) HashKey() []byte {
	if b, err := hex.DecodeString(c.Hash.Key); err == nil && len(b) >= 16 {
		return b
	}
	return []byte(c.Hash.Key)
}

// Validate reports the first field that is missing or wrong, by its YAML
// path.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if len(c.Kafka.Brokers) == 0 {
		bad("kafka.brokers", "at least one broker address is required")
	}
	for i, b := range c.Kafka.Brokers {
		if !strings.Contains(b, ":") {
			bad(fmt.Sprintf("kafka.brokers[%d]", i), "%q is not host:port", b)
		}
	}
	if c.Kafka.Group == "" {
		bad("kafka.group", "a consumer group name is required")
	}
	if c.Kafka.StartOffset != "earliest" && c.Kafka.StartOffset != "latest" {
		bad("kafka.start_offset", "%q is neither earliest nor latest", c.Kafka.StartOffset)
	}
	switch c.Kafka.SASL.Mechanism {
	case "", "plain", "scram-sha-256", "scram-sha-512":
	default:
		bad("kafka.sasl.mechanism", "%q is not plain, scram-sha-256 or scram-sha-512", c.Kafka.SASL.Mechanism)
	}
	if c.Kafka.SASL.Mechanism != "" && c.Kafka.SASL.Username == "" {
		bad("kafka.sasl.username", "a user name is required with SASL")
	}
	if c.Kafka.MaxRecordBytes <= 0 {
		bad("kafka.max_record_bytes", "must be positive")
	}
	if len(c.ClickHouse.Addr) == 0 {
		bad("clickhouse.addr", "at least one address is required")
	}
	if !validIdent(c.ClickHouse.Database) {
		bad("clickhouse.database", "%q is not a valid database name (letters, digits, _)", c.ClickHouse.Database)
	}
	if c.ClickHouse.Cluster != "" && !validIdent(c.ClickHouse.Cluster) {
		bad("clickhouse.cluster", "%q is not a valid cluster name (letters, digits, _)", c.ClickHouse.Cluster)
	}
	if c.Memory.Limit < 0 {
		bad("memory.limit", "must not be negative (0 derives it from the memory limit)")
	}
	if c.Batch.MaxRows <= 0 {
		bad("batch.max_rows", "must be positive")
	}
	if c.Batch.MaxBytes <= 0 {
		bad("batch.max_bytes", "must be positive")
	}
	if c.Batch.MaxAge <= 0 {
		bad("batch.max_age", "must be positive")
	}
	if len(c.HashKey()) < 16 {
		bad("hash.key", "a key of at least 16 bytes is required (set hash.key_file or LOGPIPE_HASH_KEY)")
	}
	if len(c.Streams) == 0 {
		bad("streams", "at least one stream is required")
	}
	seen := map[string]bool{}
	for i, s := range c.Streams {
		f := fmt.Sprintf("streams[%d]", i)
		if s.Topic == "" {
			bad(f+".topic", "a topic is required")
		}
		if seen[s.Topic] {
			bad(f+".topic", "topic %q is already read by another stream", s.Topic)
		}
		seen[s.Topic] = true
		if s.Format == "" {
			bad(f+".format", "a format is required")
		}
	}
	for i, pc := range c.Enrich.PathClasses {
		if pc.Class == "" {
			bad(fmt.Sprintf("enrich.path_classes[%d].class", i), "a class name is required")
		}
	}
	if !c.Detect.Disabled {
		channels := map[string]bool{}
		for _, ch := range c.Watch.Channels {
			channels[ch.Name] = true
		}
		for i, n := range c.Detect.Channels {
			if !channels[n] {
				bad(fmt.Sprintf("detect.channels[%d]", i), "no watch channel named %q", n)
			}
		}
	}
	switch c.Redact.DeadLetterRaw {
	case "", "redacted", "none":
	default:
		bad("redact.dead_letter_raw", "%q is neither redacted nor none", c.Redact.DeadLetterRaw)
	}
	// The redaction pass checks its own patterns.
	for _, err := range redact.CheckPatterns(c.redactPatterns()) {
		errs = append(errs, fmt.Errorf("redact.%w", err))
	}
	return errors.Join(errs...)
}

func validIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (i > 0 && r >= '0' && r <= '9') {
			continue
		}
		return false
	}
	return true
}

// ApplyEnv overrides fields from LOGPIPE_* variables in env. A LOGPIPE_*
// variable that names no field (a misspelling such as
// LOGPIPE_CLICKHOUSE_ADRR) is an error, naming the closest field; the
// variables logpipe reads for other purposes (NonConfigEnv) are let be.
// Map fields take "key=value,key=value" (LOGPIPE_RETENTION_TABLES=
// "cdn_requests=30d,job_events=90d"); list fields "a,b".
func ApplyEnv(cfg *Config, env []string) error {
	vars := map[string]string{}
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if ok && strings.HasPrefix(k, "LOGPIPE_") && !NonConfigEnv(k) {
			vars[k] = v
		}
	}
	if len(vars) == 0 {
		return nil
	}
	known := map[string]bool{}
	if err := applyEnv(reflect.ValueOf(cfg).Elem(), "LOGPIPE", vars, known); err != nil {
		return err
	}
	var errs []error
	for _, k := range sortedNames(vars) {
		if known[k] {
			continue
		}
		msg := fmt.Sprintf("%s names no config field", k)
		if near := nearestName(k, cfg); near != "" {
			msg += fmt.Sprintf(" (did you mean %s?)", near)
		}
		errs = append(errs, errors.New(msg+"; unset it, or see docs/operations.md for the variable names"))
	}
	return errors.Join(errs...)
}

// NonConfigEnv reports whether a LOGPIPE_* variable is read by logpipe
// for something other than a config field (the config file, the log
// level, test and build switches).
func NonConfigEnv(name string) bool {
	switch strings.TrimPrefix(name, "LOGPIPE_") {
	case "CONFIG", "LOG_LEVEL", "REPO", "SKIP_CLICKHOUSE", "CLICKHOUSE_KEEP":
		return true
	}
	for _, p := range []string{"LOGPIPE_TEST_", "LOGPIPE_SOAK_", "LOGPIPE_CHDB_"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// envNames lists every variable name a config has, for suggestions.
func envNames(v reflect.Value, prefix string, out *[]string) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if tag == "" || tag == "-" {
			continue
		}
		name := prefix + "_" + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(tag))
		fv := v.Field(i)
		switch {
		case fv.Kind() == reflect.Struct && fv.Type() != reflect.TypeOf(time.Time{}):
			envNames(fv, name, out)
		case fv.Kind() == reflect.Slice && fv.Type().Elem().Kind() == reflect.Struct:
			for j := 0; j < fv.Len(); j++ {
				envNames(fv.Index(j), fmt.Sprintf("%s_%d", name, j), out)
			}
		default:
			*out = append(*out, name)
		}
	}
}

func nearestName(k string, cfg *Config) string {
	var names []string
	envNames(reflect.ValueOf(cfg).Elem(), "LOGPIPE", &names)
	best, bestD := "", 4
	for _, n := range names {
		if d := EditDistance(k, n); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

// EditDistance is the Levenshtein distance between a and b (in bytes):
// how far a misspelt name is from a known one, for "did you mean" hints.
func EditDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := 1
			if a[i-1] == b[j-1] {
				c = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+c)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func sortedNames(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func applyEnv(v reflect.Value, prefix string, vars map[string]string, known map[string]bool) error {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if tag == "" || tag == "-" {
			continue
		}
		name := prefix + "_" + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(tag))
		fv := v.Field(i)
		switch fv.Kind() {
		case reflect.Struct:
			if fv.Type() == reflect.TypeOf(time.Time{}) {
				break
			}
			if err := applyEnv(fv, name, vars, known); err != nil {
				return err
			}
			continue
		case reflect.Slice:
			if fv.Type().Elem().Kind() == reflect.Struct {
				for j := 0; j < fv.Len(); j++ {
					if err := applyEnv(fv.Index(j), fmt.Sprintf("%s_%d", name, j), vars, known); err != nil {
						return err
					}
				}
				continue
			}
		}
		s, ok := vars[name]
		if !ok {
			continue
		}
		known[name] = true
		if err := setScalar(fv, s); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

func setScalar(v reflect.Value, s string) error {
	switch v.Interface().(type) {
	case time.Duration:
		d, err := ParseDuration(s)
		if err != nil {
			return err
		}
		v.SetInt(int64(d))
		return nil
	case time.Time:
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return err
		}
		v.Set(reflect.ValueOf(t))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Int, reflect.Int64, reflect.Int32:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return err
		}
		v.SetInt(n)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return err
		}
		v.SetBool(b)
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String || v.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("cannot set %s from the environment", v.Type())
		}
		m := map[string]string{}
		for _, pair := range strings.Split(s, ",") {
			if strings.TrimSpace(pair) == "" {
				continue
			}
			k, val, ok := strings.Cut(pair, "=")
			if !ok || strings.TrimSpace(k) == "" {
				return fmt.Errorf("%q is not key=value (a map takes key=value,key=value)", pair)
			}
			m[strings.TrimSpace(k)] = strings.TrimSpace(val)
		}
		v.Set(reflect.ValueOf(m))
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("cannot set %s from the environment", v.Type())
		}
		parts := strings.Split(s, ",")
		for i := range parts {
			parts[i] = strings.TrimSpace(parts[i])
		}
		v.Set(reflect.ValueOf(parts))
	default:
		return fmt.Errorf("cannot set %s from the environment", v.Type())
	}
	return nil
}
