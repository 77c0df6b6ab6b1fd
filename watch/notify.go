package watch

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/logpipe/logpipe/config"
)

// Event is one notification: an alert opened (or still open, Reminder),
// or resolved.
type Event struct {
	Status   string `json:"status"` // "firing" or "resolved"
	Reminder bool   `json:"reminder,omitempty"`
	// Update marks a firing alert sent again because it grew (more
	// objects or sessions), not because time passed.
	Update     bool      `json:"update,omitempty"`
	Rule       string    `json:"rule"`
	Key        string    `json:"key"`
	Severity   string    `json:"severity"`
	Summary    string    `json:"summary"`
	Question   string    `json:"question"`
	OpenedAt   time.Time `json:"opened_at"`
	ResolvedAt time.Time `json:"resolved_at,omitzero"`
	Evidence   Evidence  `json:"evidence"`
}

// Evidence is what the alert was raised on: the result row, and SQL that
// selects just this row again (and the full query it came from).
type Evidence struct {
	Columns []string `json:"columns"`
	Values  []string `json:"values"`
	// SQL selects this alert's row from the rendered query.
	SQL string `json:"sql"`
}

// Notifier delivers events to one channel.
type Notifier interface {
	Notify(ctx context.Context, e Event) error
}

// Webhook posts each event as JSON (the Event fields).
type Webhook struct {
	URL    string
	Client *http.Client
}

// Notify implements Notifier.
func (w Webhook) Notify(ctx context.Context, e Event) error {
	return post(ctx, w.Client, w.URL, e)
}

// Slack posts each event to a Slack-compatible incoming webhook as
// {"text": ...} (Slack, Mattermost, Rocket.Chat, Teams workflows).
type Slack struct {
	URL    string
	Client *http.Client
}

// Notify implements Notifier.
func (s Slack) Notify(ctx context.Context, e Event) error {
	return post(ctx, s.Client, s.URL, map[string]string{"text": SlackText(e)})
}

// SlackText renders e as Slack mrkdwn.
func SlackText(e Event) string {
	var b strings.Builder
	switch {
	case e.Status == "resolved":
		fmt.Fprintf(&b, ":white_check_mark: *RESOLVED* [%s] %s: %s (open since %s)\n", e.Severity, e.Rule, e.Key, e.OpenedAt.UTC().Format(time.DateTime))
	case e.Update:
		fmt.Fprintf(&b, ":rotating_light: *GROWING* [%s] %s: %s (since %s)\n", e.Severity, e.Rule, e.Key, e.OpenedAt.UTC().Format(time.DateTime))
	case e.Reminder:
		fmt.Fprintf(&b, ":rotating_light: *STILL FIRING* [%s] %s: %s (since %s)\n", e.Severity, e.Rule, e.Key, e.OpenedAt.UTC().Format(time.DateTime))
	default:
		fmt.Fprintf(&b, ":rotating_light: *FIRING* [%s] %s: %s\n", e.Severity, e.Rule, e.Key)
	}
	if e.Question != "" {
		fmt.Fprintf(&b, "_%s_\n", e.Question)
	}
	b.WriteString("```\n")
	for i, c := range e.Evidence.Columns {
		if i < len(e.Evidence.Values) {
			fmt.Fprintf(&b, "%s: %s\n", c, e.Evidence.Values[i])
		}
	}
	b.WriteString("```\nDig further:\n```\n")
	b.WriteString(e.Evidence.SQL)
	b.WriteString("\n```")
	return b.String()
}

func post(ctx context.Context, client *http.Client, url string, body any) error {
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("post to %s: %w", redactURL(url), err)
	}
	defer res.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(res.Body, 512))
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("post to %s: %s: %s", redactURL(url), res.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}

// redactURL keeps scheme and host: webhook paths are secrets.
func redactURL(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return "webhook"
	}
	host, _, _ := strings.Cut(rest, "/")
	return scheme + "://" + host + "/..."
}

// NewNotifiers builds the channels of cfg, by name.
func NewNotifiers(chans []config.WatchChannel, client *http.Client) (map[string]Notifier, error) {
	out := map[string]Notifier{}
	for i, c := range chans {
		n, err := newNotifier(i, c, out, client, true)
		if err != nil {
			return nil, err
		}
		out[c.Name] = n
	}
	return out, nil
}

// newNotifier builds channel i; defined holds the channels before it.
// Without readFiles a url_file is taken as a valid URL, unread.
func newNotifier(i int, c config.WatchChannel, defined map[string]Notifier, client *http.Client, readFiles bool) (Notifier, error) {
	where := fmt.Sprintf("watch.channels[%d]", i)
	if c.Name == "" {
		return nil, fmt.Errorf("%s.name: a channel name is required", where)
	}
	if _, dup := defined[c.Name]; dup {
		return nil, fmt.Errorf("%s.name: channel %q is defined twice", where, c.Name)
	}
	url := c.URL
	if url == "" && c.URLFile != "" {
		if !readFiles {
			url = "https://url-file.invalid/"
		} else if b, err := os.ReadFile(c.URLFile); err != nil {
			return nil, fmt.Errorf("%s.url_file: %w", where, err)
		} else {
			url = strings.TrimSpace(string(b))
		}
	}
	if !strings.HasPrefix(url, "http://") && !strings.HasPrefix(url, "https://") {
		return nil, fmt.Errorf("%s.url: an http(s) URL is required", where)
	}
	switch c.Type {
	case "webhook", "":
		return Webhook{URL: url, Client: client}, nil
	case "slack":
		return Slack{URL: url, Client: client}, nil
	}
	return nil, fmt.Errorf("%s.type: %q is neither webhook nor slack", where, c.Type)
}
