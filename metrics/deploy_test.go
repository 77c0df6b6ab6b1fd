package metrics_test

import (
	"errors"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"

	"github.com/logpipe/logpipe/metrics"
)

// TestGrafanaDashboardUsesExposedMetrics: the same for the Prometheus
// panels of the generated Grafana dashboard.
func TestGrafanaDashboardUsesExposedMetrics(t *testing.T) {
	b, err := os.ReadFile("../deploy/grafana/logpipe.json")
	if err != nil {
		t.Fatal(err)
	}
	exposed := exposedNames(t)
	used := regexp.MustCompile(`logpipe_[a-z_]+`).FindAllString(string(b), -1)
	if len(used) == 0 {
		t.Fatal("no logpipe metric in the dashboard")
	}
	for _, u := range used {
		if !exposed[u] {
			t.Errorf("dashboard uses %s, which logpipe does not expose", u)
		}
	}
}

// TestPrometheusAlertsUseExposedMetrics: every logpipe_* name in
// deploy/prometheus/alerts.yaml is a metric logpipe exposes, so renaming
// a metric cannot silently blind an alert.
func TestPrometheusAlertsUseExposedMetrics(t *testing.T) {
	b, err := os.ReadFile("../deploy/prometheus/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &file); err != nil {
		t.Fatal(err)
	}
	exposed := exposedNames(t)
	name := regexp.MustCompile(`logpipe_[a-z_]+`)
	n := 0
	for _, g := range file.Groups {
		for _, r := range g.Rules {
			for _, used := range name.FindAllString(r.Expr, -1) {
				n++
				if !exposed[used] {
					t.Errorf("alert %s uses %s, which logpipe does not expose", r.Alert, used)
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("no logpipe metric found in alerts.yaml")
	}
}

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

// exposedNames lists the sample names logpipe can expose: what the
// registry gathers once every metric has a value, and the lag metrics
// (which need brokers to be collected) by their descriptors.
func exposedNames(t *testing.T) map[string]bool {
	m := metrics.New()
	m.OnInsert("t", 1, time.Millisecond, nil)
	m.OnInsert("t", 1, time.Millisecond, errors.New("x"))
	m.OnRetry("t", 1, errors.New("x"))
	if err := m.Pipeline(func() metrics.Counts { return metrics.Counts{} }); err != nil {
		t.Fatal(err)
	}
	m.Watch([]string{"failed_runs"}).OnCycle(metrics.Cycle{RuleErrors: []string{"failed_runs"}})
	if err := m.Progress(oneProgress{}); err != nil {
		t.Fatal(err)
	}
	if err := m.Coverage(func() []metrics.StreamCoverage {
		return []metrics.StreamCoverage{{Stream: "cdn", Lines: 1, Found: []metrics.FieldLines{{Field: "host", Lines: 1}}}}
	}); err != nil {
		t.Fatal(err)
	}
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, f := range fams {
		out[f.GetName()] = true
		out[f.GetName()+"_bucket"], out[f.GetName()+"_sum"], out[f.GetName()+"_count"] = true, true, true
	}
	ch := make(chan *prometheus.Desc, 16)
	(&metrics.Lag{}).Describe(ch)
	close(ch)
	for d := range ch {
		if mm := fqName.FindStringSubmatch(d.String()); mm != nil {
			out[mm[1]] = true
		}
	}
	return out
}

// oneProgress reports one owned partition.
type oneProgress struct{}

func (oneProgress) Progress() []metrics.PartitionProgress {
	return []metrics.PartitionProgress{{Topic: "t", Partition: 0, SinceInsert: time.Second}}
}
