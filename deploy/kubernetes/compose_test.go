package kubernetes

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/logpipe/logpipe/config"
)

const composeDir = "../compose"

// composeFile covers the compose keys deploy/compose uses; decoding with
// KnownFields rejects any other (a misspelt key, or a new one: add it).
type composeFile struct {
	Name     string                    `yaml:"name"`
	Services map[string]composeService `yaml:"services"`
	Secrets  map[string]struct {
		File string `yaml:"file"`
	} `yaml:"secrets"`
	Volumes map[string]*struct{} `yaml:"volumes"`
}

type composeService struct {
	Image string `yaml:"image"`
	Build *struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
	} `yaml:"build"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	EnvFile     []string          `yaml:"env_file"`
	Volumes     []string          `yaml:"volumes"`
	Ports       []string          `yaml:"ports"`
	Secrets     []string          `yaml:"secrets"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Healthcheck *struct {
		Test        []string `yaml:"test"`
		Interval    string   `yaml:"interval"`
		Timeout     string   `yaml:"timeout"`
		Retries     int      `yaml:"retries"`
		StartPeriod string   `yaml:"start_period"`
	} `yaml:"healthcheck"`
	Restart         string `yaml:"restart"`
	ReadOnly        bool   `yaml:"read_only"`
	StopGracePeriod string `yaml:"stop_grace_period"`
}

func decodeCompose(b []byte) (composeFile, error) {
	var f composeFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	err := dec.Decode(&f)
	return f, err
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(composeDir, "docker-compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := decodeCompose(b)
	if err != nil {
		t.Fatalf("docker-compose.yaml: %v", err)
	}
	return f
}

func TestComposeDecodesStrictly(t *testing.T) {
	if _, err := decodeCompose([]byte("services:\n  x:\n    image: a\n    depend_on: [y]\n")); err == nil || !strings.Contains(err.Error(), "depend_on") {
		t.Fatalf("a misspelt key was not rejected: %v", err)
	}
	f := loadCompose(t)
	images := map[string]string{"kafka": "apache/kafka:3.8.0", "clickhouse": "clickhouse/clickhouse-server:24.8"}
	for name, img := range images {
		if got := f.Services[name].Image; got != img {
			t.Errorf("service %s image %q, want %q", name, got, img)
		}
	}
	kafka := f.Services["kafka"].Environment
	if roles := kafka["KAFKA_PROCESS_ROLES"]; !strings.Contains(roles, "broker") || !strings.Contains(roles, "controller") {
		t.Errorf("KAFKA_PROCESS_ROLES %q: want broker,controller (KRaft)", roles)
	}
	for k := range kafka {
		if strings.Contains(k, "ZOOKEEPER") {
			t.Errorf("kafka has %s: KRaft needs no ZooKeeper", k)
		}
	}
	for name, svc := range f.Services {
		for dep, cond := range svc.DependsOn {
			target, ok := f.Services[dep]
			switch {
			case !ok:
				t.Errorf("%s depends on unknown service %s", name, dep)
			case cond.Condition == "service_healthy" && target.Healthcheck == nil:
				t.Errorf("%s waits for %s to be healthy, which has no healthcheck", name, dep)
			case !slices.Contains([]string{"service_started", "service_healthy", "service_completed_successfully"}, cond.Condition):
				t.Errorf("%s depends on %s with condition %q", name, dep, cond.Condition)
			}
		}
		for _, s := range svc.Secrets {
			if _, ok := f.Secrets[s]; !ok {
				t.Errorf("%s uses undeclared secret %s", name, s)
			}
		}
		if svc.Build != nil {
			if _, err := os.Stat(filepath.Join(composeDir, svc.Build.Context, svc.Build.Dockerfile)); err != nil {
				t.Errorf("%s build: %v", name, err)
			}
		}
	}
	wants := map[string]map[string]string{
		"migrate": {"clickhouse": "service_healthy"},
		"logpipe": {"kafka": "service_healthy", "kafka-init": "service_completed_successfully", "migrate": "service_completed_successfully"},
	}
	for name, deps := range wants {
		for dep, cond := range deps {
			if got := f.Services[name].DependsOn[dep].Condition; got != cond {
				t.Errorf("%s depends on %s with %q, want %q", name, dep, got, cond)
			}
		}
	}
}

// TestComposeConfigLoads: logpipe.yaml as the logpipe and migrate
// services see it (their environment and secrets) loads through the
// config package and names the compose services.
func TestComposeConfigLoads(t *testing.T) {
	f := loadCompose(t)
	for name, load := range map[string]func(string, []string) (config.Config, error){
		"logpipe": config.Load, "migrate": config.LoadClickHouse,
	} {
		svc := f.Services[name]
		root := t.TempDir()
		// Bind mounts, then secrets at /run/secrets/NAME. The hash-key
		// file is the user's (gitignored): write a test key.
		for _, v := range svc.Volumes {
			parts := strings.Split(v, ":")
			if !strings.HasPrefix(parts[0], ".") {
				continue
			}
			b, err := os.ReadFile(filepath.Join(composeDir, parts[0]))
			if err != nil {
				t.Fatalf("%s volume %s: %v", name, v, err)
			}
			writeFile(t, filepath.Join(root, parts[1]), b)
		}
		for _, s := range svc.Secrets {
			b, err := os.ReadFile(filepath.Join(composeDir, f.Secrets[s].File))
			if os.IsNotExist(err) && s == "hash-key" {
				b, err = []byte(testHashKey+"\n"), nil
			}
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(root, "/run/secrets", s), b)
		}
		path, ok := flagValue(svc.Command, "config")
		if !ok {
			t.Fatalf("%s command %q: no -config", name, svc.Command)
		}
		local := filepath.Join(root, path)
		b, err := os.ReadFile(local)
		if err != nil {
			t.Fatalf("%s: -config %s is not mounted: %v", name, path, err)
		}
		writeFile(t, local, []byte(strings.ReplaceAll(string(b), "/run/secrets/", filepath.Join(root, "/run/secrets")+"/")))
		var env []string
		for k, v := range svc.Environment {
			env = append(env, k+"="+v)
		}
		cfg, err := load(local, env)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if cfg.ClickHouse.Password != f.Services["clickhouse"].Environment["CLICKHOUSE_PASSWORD"] || cfg.ClickHouse.User != f.Services["clickhouse"].Environment["CLICKHOUSE_USER"] {
			t.Errorf("%s: clickhouse user %s, password %q do not match the clickhouse service", name, cfg.ClickHouse.User, cfg.ClickHouse.Password)
		}
		for _, a := range cfg.ClickHouse.Addr {
			if host, _, _ := net.SplitHostPort(a); f.Services[host].Image == "" {
				t.Errorf("%s: clickhouse.addr %s is not a compose service", name, a)
			}
		}
		if name != "logpipe" {
			continue
		}
		listeners := f.Services["kafka"].Environment["KAFKA_ADVERTISED_LISTENERS"]
		for _, b := range cfg.Kafka.Brokers {
			if !strings.Contains(listeners, "://"+b) {
				t.Errorf("kafka broker %s is not an advertised listener (%s)", b, listeners)
			}
		}
		init := strings.Join(f.Services["kafka-init"].Command, " ")
		for _, s := range cfg.Streams {
			if !regexp.MustCompile(`\b` + regexp.QuoteMeta(s.Topic) + `\b`).MatchString(init) {
				t.Errorf("topic %s is not created by kafka-init", s.Topic)
			}
		}
		_, port, _ := net.SplitHostPort(cfg.HTTP.Listen)
		if !slices.ContainsFunc(svc.Ports, func(p string) bool { return strings.HasSuffix(p, ":"+port) }) {
			t.Errorf("http.listen port %s is not published (%v)", port, svc.Ports)
		}
	}
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestDockerfile: a static build of ./cmd/logpipe, run as nonroot on
// distroless with /logpipe as entrypoint (what the manifests' args and
// securityContext assume).
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	// Join continuation lines, drop comments.
	text := regexp.MustCompile(`\\\n\s*`).ReplaceAllString(string(b), " ")
	type stage struct {
		from, name string
		lines      []string
	}
	var stages []stage
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if f := strings.Fields(line); strings.EqualFold(f[0], "FROM") {
			st := stage{from: f[1]}
			if len(f) == 4 && strings.EqualFold(f[2], "AS") {
				st.name = f[3]
			}
			stages = append(stages, st)
			continue
		}
		if len(stages) == 0 {
			t.Fatalf("instruction before FROM: %s", line)
		}
		stages[len(stages)-1].lines = append(stages[len(stages)-1].lines, line)
	}
	if len(stages) < 2 {
		t.Fatalf("%d stages, want a build stage and a runtime stage", len(stages))
	}
	build, final := stages[0], stages[len(stages)-1]
	if !strings.HasPrefix(build.from, "golang:") {
		t.Errorf("build stage FROM %s, want golang", build.from)
	}
	goBuild := ""
	for _, l := range build.lines {
		if strings.HasPrefix(l, "RUN ") && strings.Contains(l, "go build") {
			goBuild = l
		}
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "./cmd/logpipe", "-o /out/logpipe"} {
		if !strings.Contains(goBuild, want) {
			t.Errorf("build stage's go build %q lacks %s", goBuild, want)
		}
	}
	if !strings.HasPrefix(final.from, "gcr.io/distroless/static") || !strings.HasSuffix(final.from, ":nonroot") {
		t.Errorf("final stage FROM %s, want distroless static :nonroot", final.from)
	}
	for _, want := range []string{"COPY --from=" + build.name + " /out/logpipe /logpipe", `ENTRYPOINT ["/logpipe"]`, "USER nonroot:nonroot"} {
		if !slices.Contains(final.lines, want) {
			t.Errorf("final stage lacks %s: %q", want, final.lines)
		}
	}
	ign, err := os.ReadFile("../../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{".git", "deploy/compose/hash-key"} {
		if !slices.Contains(strings.Fields(string(ign)), want) {
			t.Errorf(".dockerignore does not exclude %s", want)
		}
	}
}
