package watch

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/logpipe/logpipe/chclient"
)

// Alert is the state of one (rule, key).
type Alert struct {
	Rule       string
	Key        string
	Severity   string
	Summary    string
	Evidence   Evidence
	OpenedAt   time.Time
	LastSeen   time.Time
	ResolvedAt time.Time // zero (epoch) = open
	NotifiedAt time.Time // zero (epoch) = not notified yet
	Version    uint64
}

// Open reports whether the alert has not been resolved.
func (a Alert) Open() bool { return unset(a.ResolvedAt) }

func unset(t time.Time) bool { return t.Unix() <= 0 }

// epoch is how an unset DateTime is stored.
var epoch = time.Unix(0, 0).UTC()

type alertID struct{ rule, key string }

// loadAlerts reads the latest state of every alert.
func loadAlerts(ctx context.Context, conn *chclient.Conn) (map[alertID]Alert, error) {
	return loadAlertsWhere(ctx, conn, "")
}

func loadAlertsWhere(ctx context.Context, conn *chclient.Conn, where string) (map[alertID]Alert, error) {
	rows, err := conn.Rows(ctx, `SELECT rule, alert_key, severity, summary, evidence, opened_at, last_seen, resolved_at, notified_at, version FROM alerts FINAL `+where)
	if err != nil {
		return nil, fmt.Errorf("read alerts: %w", err)
	}
	defer rows.Close()
	out := map[alertID]Alert{}
	for rows.Next() {
		var a Alert
		var evidence string
		if err := rows.Scan(&a.Rule, &a.Key, &a.Severity, &a.Summary, &evidence, &a.OpenedAt, &a.LastSeen, &a.ResolvedAt, &a.NotifiedAt, &a.Version); err != nil {
			return nil, fmt.Errorf("read alerts: %w", err)
		}
		if evidence != "" {
			if err := json.Unmarshal([]byte(evidence), &a.Evidence); err != nil {
				return nil, fmt.Errorf("read alerts: rule %s key %q: evidence: %w", a.Rule, a.Key, err)
			}
		}
		out[alertID{a.Rule, a.Key}] = a
	}
	return out, rows.Err()
}

// saveAlerts inserts the new state of as in one block.
func saveAlerts(ctx context.Context, conn *chclient.Conn, as []Alert) error {
	if len(as) == 0 {
		return nil
	}
	b, err := conn.PrepareBatch(ctx, `INSERT INTO alerts (rule, alert_key, severity, summary, evidence, opened_at, last_seen, resolved_at, notified_at, version)`)
	if err != nil {
		return fmt.Errorf("save alerts: %w", err)
	}
	defer b.Abort()
	dt := func(t time.Time) time.Time {
		if unset(t) {
			return epoch
		}
		return t.UTC().Truncate(time.Second)
	}
	for _, a := range as {
		ev, err := json.Marshal(a.Evidence)
		if err != nil {
			return err
		}
		if err := b.Append(a.Rule, a.Key, a.Severity, a.Summary, string(ev), dt(a.OpenedAt), dt(a.LastSeen), dt(a.ResolvedAt), dt(a.NotifiedAt), a.Version); err != nil {
			return fmt.Errorf("save alert %s %q: %w", a.Rule, a.Key, err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("save %d alerts: %w", len(as), err)
	}
	return nil
}

// LoadAlert reads the latest state of one alert; false if it never
// existed. Other alert sources that share the alerts table (the streaming
// leak detector, package detect) use it so that an alert is sent once
// whichever source sees the condition first.
func LoadAlert(ctx context.Context, conn *chclient.Conn, rule, key string) (Alert, bool, error) {
	as, err := loadAlertsWhere(ctx, conn, "WHERE rule = "+chclient.String(rule)+" AND alert_key = "+chclient.String(key))
	if err != nil {
		return Alert{}, false, err
	}
	a, ok := as[alertID{rule, key}]
	return a, ok, nil
}

// SaveAlerts stores new states of alerts (each with a higher Version than
// the one it replaces).
func SaveAlerts(ctx context.Context, conn *chclient.Conn, as []Alert) error {
	return saveAlerts(ctx, conn, as)
}
