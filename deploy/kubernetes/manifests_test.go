// Package kubernetes holds logpipe's Kubernetes manifests (apply with
// `kubectl apply -k deploy/kubernetes`) and the tests that validate them:
// every document of every YAML file is decoded strictly into its
// Kubernetes API type (or, for the Strimzi and Altinity resources, into
// local structs covering the fields used), so a misspelt field fails; and
// the manifests are checked against the code they deploy (the config
// loads through the config package, probes hit paths the health server
// serves, container arguments are flags the binary defines).
package kubernetes

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/logpipe/logpipe/config"
	"github.com/logpipe/logpipe/metrics"
)

// Local types for the custom resources: only the fields the manifests
// use, so that strict decoding rejects anything else (a misspelt field
// as well as a field these types do not know yet: add it here).

type kafkaTopic struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		TopicName  string         `json:"topicName,omitempty"`
		Partitions int32          `json:"partitions"`
		Replicas   int32          `json:"replicas"`
		Config     map[string]any `json:"config,omitempty"`
	} `json:"spec"`
}

type kafkaACL struct {
	Resource struct {
		Type        string `json:"type"`
		Name        string `json:"name"`
		PatternType string `json:"patternType,omitempty"`
	} `json:"resource"`
	Operations []string `json:"operations"`
	Host       string   `json:"host,omitempty"`
}

type kafkaUser struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Authentication struct {
			Type string `json:"type"`
		} `json:"authentication"`
		Authorization struct {
			Type string     `json:"type"`
			ACLs []kafkaACL `json:"acls"`
		} `json:"authorization"`
	} `json:"spec"`
}

type chiInstallation struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Defaults struct {
			Templates struct {
				PodTemplate             string `json:"podTemplate,omitempty"`
				DataVolumeClaimTemplate string `json:"dataVolumeClaimTemplate,omitempty"`
				LogVolumeClaimTemplate  string `json:"logVolumeClaimTemplate,omitempty"`
				ServiceTemplate         string `json:"serviceTemplate,omitempty"`
			} `json:"templates"`
		} `json:"defaults"`
		Configuration struct {
			Zookeeper struct {
				Nodes []struct {
					Host string `json:"host"`
					Port int32  `json:"port"`
				} `json:"nodes"`
			} `json:"zookeeper"`
			// Users are "name/setting" keys; checkCHIUsers decodes each
			// value strictly by its setting.
			Users    map[string]json.RawMessage `json:"users"`
			Clusters []struct {
				Name   string `json:"name"`
				Layout struct {
					ShardsCount   int32 `json:"shardsCount"`
					ReplicasCount int32 `json:"replicasCount"`
				} `json:"layout"`
				Secret *struct {
					Auto string `json:"auto"`
				} `json:"secret,omitempty"`
			} `json:"clusters"`
		} `json:"configuration"`
		Templates struct {
			PodTemplates         []chiPodTemplate `json:"podTemplates"`
			VolumeClaimTemplates []struct {
				Name string                           `json:"name"`
				Spec corev1.PersistentVolumeClaimSpec `json:"spec"`
			} `json:"volumeClaimTemplates"`
			ServiceTemplates []struct {
				Name         string             `json:"name"`
				GenerateName string             `json:"generateName"`
				Spec         corev1.ServiceSpec `json:"spec"`
			} `json:"serviceTemplates"`
		} `json:"templates"`
	} `json:"spec"`
}

type chiPodTemplate struct {
	Name            string `json:"name"`
	PodDistribution []struct {
		Type string `json:"type"`
	} `json:"podDistribution,omitempty"`
	Spec corev1.PodSpec `json:"spec"`
}

type secretKeyRef struct {
	ValueFrom struct {
		SecretKeyRef corev1.SecretKeySelector `json:"secretKeyRef"`
	} `json:"valueFrom"`
}

type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Resources  []string `json:"resources"`
	Images     []struct {
		Name    string `json:"name"`
		NewName string `json:"newName,omitempty"`
		NewTag  string `json:"newTag,omitempty"`
		Digest  string `json:"digest,omitempty"`
	} `json:"images,omitempty"`
}

// newObject returns a pointer to the type of apiVersion/kind; an unknown
// kind is an error, so that a new kind must be given a type here.
func newObject(apiVersion, kind string) (any, error) {
	switch apiVersion + "/" + kind {
	case "v1/Namespace":
		return new(corev1.Namespace), nil
	case "v1/ServiceAccount":
		return new(corev1.ServiceAccount), nil
	case "v1/ConfigMap":
		return new(corev1.ConfigMap), nil
	case "v1/Secret":
		return new(corev1.Secret), nil
	case "v1/Service":
		return new(corev1.Service), nil
	case "apps/v1/Deployment":
		return new(appsv1.Deployment), nil
	case "batch/v1/Job":
		return new(batchv1.Job), nil
	case "policy/v1/PodDisruptionBudget":
		return new(policyv1.PodDisruptionBudget), nil
	case "autoscaling/v2/HorizontalPodAutoscaler":
		return new(autoscalingv2.HorizontalPodAutoscaler), nil
	case "kafka.strimzi.io/v1beta2/KafkaTopic":
		return new(kafkaTopic), nil
	case "kafka.strimzi.io/v1beta2/KafkaUser":
		return new(kafkaUser), nil
	case "clickhouse.altinity.com/v1/ClickHouseInstallation":
		return new(chiInstallation), nil
	case "kustomize.config.k8s.io/v1beta1/Kustomization":
		return new(kustomization), nil
	}
	return nil, fmt.Errorf("unknown kind %q of apiVersion %q: give it a type in newObject", kind, apiVersion)
}

// manifest is one decoded YAML document.
type manifest struct {
	file       string
	index      int // document number in the file, from 0
	apiVersion string
	kind       string
	name       string
	namespace  string
	obj        any
}

func (m manifest) String() string {
	return fmt.Sprintf("%s#%d %s %s/%s", m.file, m.index, m.kind, m.namespace, m.name)
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*(#.*)?$`)

// splitDocuments cuts a multi-document YAML file at its "---" lines and
// drops documents holding only comments or blanks.
func splitDocuments(b []byte) ([][]byte, error) {
	var docs [][]byte
	for i, d := range docSeparator.Split(string(b), -1) {
		var v any
		if err := sigsyaml.Unmarshal([]byte(d), &v); err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if v == nil {
			continue
		}
		docs = append(docs, []byte(d))
	}
	return docs, nil
}

// decodeDocument decodes one document strictly: duplicate keys, unknown
// fields, wrong types and unknown kinds are errors.
func decodeDocument(doc []byte) (manifest, error) {
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := sigsyaml.Unmarshal(doc, &head); err != nil {
		return manifest{}, err
	}
	if head.APIVersion == "" || head.Kind == "" {
		return manifest{}, errors.New("apiVersion and kind are required")
	}
	obj, err := newObject(head.APIVersion, head.Kind)
	if err != nil {
		return manifest{}, err
	}
	useNumber := func(d *json.Decoder) *json.Decoder { d.UseNumber(); return d }
	if err := sigsyaml.UnmarshalStrict(doc, obj, useNumber); err != nil {
		return manifest{}, fmt.Errorf("%s %s: %w", head.APIVersion, head.Kind, err)
	}
	m := manifest{apiVersion: head.APIVersion, kind: head.Kind, obj: obj}
	if o, ok := obj.(metav1.Object); ok {
		m.name, m.namespace = o.GetName(), o.GetNamespace()
	}
	return m, nil
}

// loadManifests decodes every document of every YAML file in this
// directory.
func loadManifests(t *testing.T) []manifest {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	more, _ := filepath.Glob("*.yml")
	files = append(files, more...)
	if len(files) == 0 {
		t.Fatal("no YAML files in deploy/kubernetes")
	}
	var ms []manifest
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		docs, err := splitDocuments(b)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if len(docs) == 0 {
			t.Errorf("%s: no document", f)
		}
		for i, d := range docs {
			m, err := decodeDocument(d)
			if err != nil {
				t.Errorf("%s document %d: %v", f, i, err)
				continue
			}
			m.file, m.index = f, i
			ms = append(ms, m)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return ms
}

// find returns the one object of type T named name (any name when name
// is empty and there is exactly one T).
func find[T any](t *testing.T, ms []manifest, name string) *T {
	t.Helper()
	var found []*T
	for _, m := range ms {
		if o, ok := m.obj.(*T); ok && (name == "" || m.name == name) {
			found = append(found, o)
		}
	}
	if len(found) != 1 {
		var zero T
		t.Fatalf("want exactly one %T named %q, found %d", zero, name, len(found))
	}
	return found[0]
}

func all[T any](ms []manifest) []*T {
	var found []*T
	for _, m := range ms {
		if o, ok := m.obj.(*T); ok {
			found = append(found, o)
		}
	}
	return found
}

func TestManifestsDecodeStrictly(t *testing.T) {
	ms := loadManifests(t)
	count := map[string]int{}
	seen := map[string]string{}
	for _, m := range ms {
		count[m.kind]++
		if m.kind == "Kustomization" {
			continue
		}
		if m.name == "" {
			t.Errorf("%v: metadata.name is empty", m)
		}
		// kustomization.yaml sets no namespace: every namespaced object
		// says where it goes.
		if m.kind != "Namespace" && m.namespace == "" {
			t.Errorf("%v: metadata.namespace is empty", m)
		}
		key := m.apiVersion + "/" + m.kind + "/" + m.namespace + "/" + m.name
		if prev, ok := seen[key]; ok {
			t.Errorf("%v: also defined in %s", m, prev)
		}
		seen[key] = m.String()
	}
	for _, kind := range []string{"Namespace", "ServiceAccount", "ConfigMap", "Secret", "Deployment", "Service",
		"PodDisruptionBudget", "HorizontalPodAutoscaler", "Job", "KafkaTopic", "KafkaUser", "ClickHouseInstallation", "Kustomization"} {
		if count[kind] == 0 {
			t.Errorf("no %s in deploy/kubernetes", kind)
		}
	}
	t.Logf("%d documents decoded strictly: %v", len(ms), count)
}

// TestStrictDecodingRejectsMistakes proves the validation can fail: each
// broken manifest is rejected, and its corrected twin accepted (so the
// rejection is for the mistake, not for something else in the document).
func TestStrictDecodingRejectsMistakes(t *testing.T) {
	const deployment = `apiVersion: apps/v1
kind: Deployment
metadata: {name: x, namespace: y}
spec:
  %s: 2
  selector: {matchLabels: {app: x}}
  template:
    metadata: {labels: {app: x}}
    spec:
      containers: [{name: x, image: x}]
`
	const topic = `apiVersion: kafka.strimzi.io/v1beta2
kind: KafkaTopic
metadata: {name: t, namespace: kafka}
spec: {%s: 12, replicas: 3}
`
	const chi = `apiVersion: clickhouse.altinity.com/v1
kind: ClickHouseInstallation
metadata: {name: c, namespace: clickhouse}
spec:
  configuration:
    clusters: [{name: c, layout: {%s: 2, replicasCount: 2}}]
`
	for _, tc := range []struct {
		name, bad, good, wantErr string
	}{
		{"misspelt Deployment field", fmt.Sprintf(deployment, "replica"), fmt.Sprintf(deployment, "replicas"), `unknown field "replica"`},
		{"misspelt KafkaTopic field", fmt.Sprintf(topic, "partition"), fmt.Sprintf(topic, "partitions"), `unknown field "partition"`},
		{"misspelt ClickHouseInstallation field", fmt.Sprintf(chi, "shardCount"), fmt.Sprintf(chi, "shardsCount"), `unknown field "shardCount"`},
		{"misspelt kind", strings.Replace(fmt.Sprintf(deployment, "replicas"), "kind: Deployment", "kind: Deploymnet", 1), fmt.Sprintf(deployment, "replicas"), `unknown kind "Deploymnet"`},
		{"duplicate key", strings.Replace(fmt.Sprintf(deployment, "replicas"), "  replicas: 2\n", "  replicas: 2\n  replicas: 3\n", 1), fmt.Sprintf(deployment, "replicas"), `already set in map`},
		{"wrong type", strings.Replace(fmt.Sprintf(deployment, "replicas"), "replicas: 2", `replicas: "two"`, 1), fmt.Sprintf(deployment, "replicas"), `cannot unmarshal string`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeDocument([]byte(tc.bad))
			if err == nil {
				t.Fatalf("accepted:\n%s", tc.bad)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q does not say %q", err, tc.wantErr)
			}
			if _, err := decodeDocument([]byte(tc.good)); err != nil {
				t.Errorf("the corrected manifest is rejected too: %v", err)
			}
		})
	}
}

func TestKustomizationListsEveryFile(t *testing.T) {
	k := find[kustomization](t, loadManifests(t), "")
	files, _ := filepath.Glob("*.yaml")
	files = slices.DeleteFunc(files, func(f string) bool { return f == "kustomization.yaml" })
	got := slices.Clone(k.Resources)
	sort.Strings(got)
	sort.Strings(files)
	if !slices.Equal(got, files) {
		t.Errorf("kustomization resources %v, files %v", got, files)
	}
	for _, img := range k.Images {
		if img.Name != deploymentImageName(t, loadManifests(t)) {
			t.Errorf("kustomization images: %s is not the logpipe image", img.Name)
		}
	}
}

func deploymentImageName(t *testing.T, ms []manifest) string {
	name, _, _ := strings.Cut(consumer(t, ms).Image, ":")
	return name
}

func consumer(t *testing.T, ms []manifest) *corev1.Container {
	t.Helper()
	d := find[appsv1.Deployment](t, ms, "logpipe")
	if n := len(d.Spec.Template.Spec.Containers); n != 1 {
		t.Fatalf("Deployment logpipe has %d containers, want 1", n)
	}
	return &d.Spec.Template.Spec.Containers[0]
}

// podFiles writes the files a pod's container sees through its ConfigMap
// and Secret volumes under root (root + mountPath + "/" + key), taking the
// contents from the manifests. It returns the mount paths.
func podFiles(t *testing.T, ms []manifest, namespace string, pod corev1.PodSpec, c corev1.Container, root string) []string {
	t.Helper()
	var mounts []string
	for _, vm := range c.VolumeMounts {
		i := slices.IndexFunc(pod.Volumes, func(v corev1.Volume) bool { return v.Name == vm.Name })
		if i < 0 {
			t.Fatalf("container %s mounts volume %q, which the pod does not define", c.Name, vm.Name)
		}
		files := map[string]string{}
		switch v := pod.Volumes[i]; {
		case v.ConfigMap != nil:
			cm := find[corev1.ConfigMap](t, ms, v.ConfigMap.Name)
			if cm.Namespace != namespace {
				t.Fatalf("ConfigMap %s is in namespace %q, the pod in %q", cm.Name, cm.Namespace, namespace)
			}
			for k, val := range cm.Data {
				files[k] = val
			}
		case v.Secret != nil:
			s := find[corev1.Secret](t, ms, v.Secret.SecretName)
			if s.Namespace != namespace {
				t.Fatalf("Secret %s is in namespace %q, the pod in %q", s.Name, s.Namespace, namespace)
			}
			for k, val := range s.StringData {
				files[k] = val
			}
			for k, val := range s.Data {
				files[k] = string(val)
			}
		default:
			t.Fatalf("volume %s: only ConfigMap and Secret volumes are materialised", v.Name)
		}
		dir := filepath.Join(root, vm.MountPath)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for k, val := range files {
			if err := os.WriteFile(filepath.Join(dir, k), []byte(val), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		mounts = append(mounts, vm.MountPath)
	}
	return mounts
}

// flagValue returns the value following -name in args.
func flagValue(args []string, name string) (string, bool) {
	for i, a := range args {
		if (a == "-"+name || a == "--"+name) && i+1 < len(args) {
			return args[i+1], true
		}
		if v, ok := strings.CutPrefix(a, "-"+name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// loadPodConfig loads the config the container would load: its -config
// file and the secret files it names, as mounted in the pod, with the
// container's literal environment plus extraEnv.
func loadPodConfig(t *testing.T, ms []manifest, namespace string, pod corev1.PodSpec, c corev1.Container,
	load func(string, []string) (config.Config, error), extraEnv ...string) (config.Config, string, error) {
	t.Helper()
	root := t.TempDir()
	mounts := podFiles(t, ms, namespace, pod, c, root)
	path, ok := flagValue(c.Args, "config")
	if !ok {
		t.Fatalf("container %s: no -config in args %q", c.Name, c.Args)
	}
	local := filepath.Join(root, path)
	b, err := os.ReadFile(local)
	if err != nil {
		t.Fatalf("container %s: -config %s is not in a mounted volume: %v", c.Name, path, err)
	}
	// Paths in the config name the pod's files; point them at the copies.
	text := string(b)
	for _, m := range mounts {
		text = strings.ReplaceAll(text, m+"/", filepath.Join(root, m)+"/")
	}
	if err := os.WriteFile(local, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			env = append(env, e.Name+"="+e.Value)
		}
	}
	cfg, err := load(local, append(env, extraEnv...))
	return cfg, root, err
}

const testHashKey = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

// TestConfigMapLoadsThroughConfig: the consumers' logpipe.yaml, with the
// Secret's files where the pod mounts them, loads through config.Load;
// the shipped placeholder hash key is refused (a deployment with the
// placeholders cannot start hashing with a known key); and the values
// agree with the Kafka and ClickHouse resources.
func TestConfigMapLoadsThroughConfig(t *testing.T) {
	ms := loadManifests(t)
	d := find[appsv1.Deployment](t, ms, "logpipe")
	c := *consumer(t, ms)

	_, _, err := loadPodConfig(t, ms, d.Namespace, d.Spec.Template.Spec, c, config.Load)
	if err == nil || !strings.Contains(err.Error(), "hash.key") || strings.Count(err.Error(), "\n") != 0 {
		t.Fatalf("with the placeholder hash key: err = %v, want only the hash.key error", err)
	}

	cfg, root, err := loadPodConfig(t, ms, d.Namespace, d.Spec.Template.Spec, c, config.Load, "LOGPIPE_HASH_KEY="+testHashKey)
	if err != nil {
		t.Fatalf("config.Load: %v", err)
	}
	for _, w := range cfg.Warnings {
		t.Errorf("config warning: %s", w)
	}
	// The *_file secrets were read from the Secret's keys.
	if cfg.Kafka.SASL.Password != "REPLACE_ME" || cfg.ClickHouse.Password != "REPLACE_ME" {
		t.Errorf("passwords not read from the mounted Secret: kafka %q, clickhouse %q", cfg.Kafka.SASL.Password, cfg.ClickHouse.Password)
	}
	if _, err := os.Stat(cfg.Kafka.TLS.CAFile); err != nil || !strings.HasPrefix(cfg.Kafka.TLS.CAFile, root) {
		t.Errorf("kafka.tls.ca_file %s is not a mounted file: %v", cfg.Kafka.TLS.CAFile, err)
	}

	// Kafka: the Strimzi cluster's TLS bootstrap, SCRAM as the KafkaUser.
	topics := all[kafkaTopic](ms)
	if len(topics) == 0 {
		t.Fatal("no KafkaTopic")
	}
	cluster := topics[0].Labels["strimzi.io/cluster"]
	for _, b := range cfg.Kafka.Brokers {
		host, port, _ := net.SplitHostPort(b)
		if !strings.HasPrefix(host, cluster+"-kafka-bootstrap.") || port != "9093" {
			t.Errorf("kafka broker %s is not the TLS bootstrap of Strimzi cluster %s", b, cluster)
		}
	}
	if !cfg.Kafka.TLS.Enabled || cfg.Kafka.SASL.Mechanism != "scram-sha-512" {
		t.Errorf("kafka tls %v, sasl %q: want TLS and scram-sha-512", cfg.Kafka.TLS.Enabled, cfg.Kafka.SASL.Mechanism)
	}
	user := find[kafkaUser](t, ms, cfg.Kafka.SASL.Username)
	if user.Spec.Authentication.Type != cfg.Kafka.SASL.Mechanism {
		t.Errorf("KafkaUser %s authenticates with %s, logpipe with %s", user.Name, user.Spec.Authentication.Type, cfg.Kafka.SASL.Mechanism)
	}
	if user.Labels["strimzi.io/cluster"] != cluster {
		t.Errorf("KafkaUser %s is for cluster %q, the topics for %q", user.Name, user.Labels["strimzi.io/cluster"], cluster)
	}
	allowed := func(typ, name, op string) bool {
		for _, a := range user.Spec.Authorization.ACLs {
			if a.Resource.Type == typ && a.Resource.Name == name && a.Resource.PatternType != "prefix" && slices.Contains(a.Operations, op) {
				return true
			}
		}
		return false
	}
	if !allowed("group", cfg.Kafka.Group, "Read") {
		t.Errorf("KafkaUser %s may not Read group %s", user.Name, cfg.Kafka.Group)
	}
	topicNames := map[string]*kafkaTopic{}
	for _, tp := range topics {
		n := tp.Spec.TopicName
		if n == "" {
			n = tp.Name
		}
		topicNames[n] = tp
	}
	for _, s := range cfg.Streams {
		if topicNames[s.Topic] == nil {
			t.Errorf("stream %s reads topic %s, which has no KafkaTopic", s.Name, s.Topic)
		}
		if !allowed("topic", s.Topic, "Read") {
			t.Errorf("KafkaUser %s may not Read topic %s", user.Name, s.Topic)
		}
	}

	// ClickHouse: the operator's service for the installation, as a user
	// the installation defines.
	chi := find[chiInstallation](t, ms, "")
	svc := "clickhouse-" + chi.Name + "." + chi.Namespace
	for _, a := range cfg.ClickHouse.Addr {
		if host, port, _ := net.SplitHostPort(a); host != svc || port != "9000" {
			t.Errorf("clickhouse.addr %s is not %s:9000", a, svc)
		}
	}
	if cl := chi.Spec.Configuration.Clusters; len(cl) == 0 || cfg.ClickHouse.Cluster != cl[0].Name {
		t.Errorf("clickhouse.cluster %q is not the ClickHouseInstallation's cluster", cfg.ClickHouse.Cluster)
	}
	if _, ok := chi.Spec.Configuration.Users[cfg.ClickHouse.User+"/password"]; !ok {
		t.Errorf("ClickHouseInstallation %s defines no password for user %s", chi.Name, cfg.ClickHouse.User)
	}

	// HTTP: the server listens on the container's http port.
	_, port, err := net.SplitHostPort(cfg.HTTP.Listen)
	if err != nil {
		t.Fatalf("http.listen %q: %v", cfg.HTTP.Listen, err)
	}
	if want := strconv.Itoa(int(containerPort(t, c, "http"))); port != want {
		t.Errorf("http.listen port %s, container port http %s", port, want)
	}
	// SIGTERM flushes: an INSERT may take insert_timeout.
	if g := d.Spec.Template.Spec.TerminationGracePeriodSeconds; g == nil || float64(*g) < cfg.ClickHouse.InsertTimeout.Seconds() {
		t.Errorf("terminationGracePeriodSeconds %v is shorter than clickhouse.insert_timeout %v", g, cfg.ClickHouse.InsertTimeout)
	}
}

func containerPort(t *testing.T, c corev1.Container, name string) int32 {
	t.Helper()
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	t.Fatalf("container %s has no port named %s", c.Name, name)
	return 0
}

// TestMigrateJobConfigLoads: the Job's mounts give `logpipe migrate` a
// config that loads (LoadClickHouse, as migrate does, still reads every
// *_file), and it migrates the ClickHouseInstallation's cluster.
func TestMigrateJobConfigLoads(t *testing.T) {
	ms := loadManifests(t)
	job := find[batchv1.Job](t, ms, "logpipe-migrate")
	if n := len(job.Spec.Template.Spec.Containers); n != 1 {
		t.Fatalf("Job has %d containers", n)
	}
	c := job.Spec.Template.Spec.Containers[0]
	if len(c.Args) == 0 || c.Args[0] != "migrate" {
		t.Fatalf("Job args %q: want the migrate subcommand", c.Args)
	}
	if _, _, err := loadPodConfig(t, ms, job.Namespace, job.Spec.Template.Spec, c, config.LoadClickHouse); err != nil {
		t.Fatalf("config.LoadClickHouse: %v", err)
	}
	cluster, ok := flagValue(c.Args, "cluster")
	if !ok {
		t.Fatalf("Job args %q: no -cluster", c.Args)
	}
	chi := find[chiInstallation](t, ms, "")
	var names []string
	for _, cl := range chi.Spec.Configuration.Clusters {
		names = append(names, cl.Name)
	}
	if !slices.Contains(names, cluster) {
		t.Errorf("migrate -cluster %s, but ClickHouseInstallation %s has clusters %v", cluster, chi.Name, names)
	}
	if job.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyOnFailure && job.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("Job restartPolicy %q", job.Spec.Template.Spec.RestartPolicy)
	}
}

// TestProbesHitServedPaths sends each probe's request (and the Prometheus
// scrape) to the real health and metrics handler.
func TestProbesHitServedPaths(t *testing.T) {
	ms := loadManifests(t)
	d := find[appsv1.Deployment](t, ms, "logpipe")
	c := *consumer(t, ms)
	h := metrics.Handler(prometheus.NewRegistry())
	status := func(path string) int {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec.Code
	}
	if code := status("/no-such-path"); code != http.StatusNotFound {
		t.Fatalf("unknown path answered %d: the check below would prove nothing", code)
	}
	port := containerPort(t, c, "http")
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		want  string
	}{
		{"startupProbe", c.StartupProbe, "/healthz"},
		{"livenessProbe", c.LivenessProbe, "/healthz"}, // never /readyz: a rebalance must not restart pods
		{"readinessProbe", c.ReadinessProbe, "/readyz"},
	} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s: missing or not httpGet", p.name)
			continue
		}
		g := p.probe.HTTPGet
		if g.Path != p.want {
			t.Errorf("%s path %s, want %s", p.name, g.Path, p.want)
		}
		if code := status(g.Path); code != http.StatusOK {
			t.Errorf("%s: GET %s answered %d", p.name, g.Path, code)
		}
		if g.Port.String() != "http" && g.Port.IntValue() != int(port) {
			t.Errorf("%s port %s is not the http port %d", p.name, g.Port.String(), port)
		}
	}
	ann := d.Spec.Template.Annotations
	if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/port"] != strconv.Itoa(int(port)) {
		t.Errorf("prometheus annotations %v do not scrape port %d", ann, port)
	}
	if code := status(ann["prometheus.io/path"]); code != http.StatusOK {
		t.Errorf("prometheus.io/path %q answered %d", ann["prometheus.io/path"], code)
	}
	svc := find[corev1.Service](t, ms, "logpipe-metrics")
	for _, sp := range svc.Spec.Ports {
		if sp.TargetPort.String() != "http" && sp.TargetPort.IntValue() != int(port) {
			t.Errorf("Service port %s targets %s, not the http port", sp.Name, sp.TargetPort.String())
		}
	}
}

// TestSelectorsPickTheConsumers: Service, PodDisruptionBudget and HPA
// address the Deployment's pods, and not the migrate Job's.
func TestSelectorsPickTheConsumers(t *testing.T) {
	ms := loadManifests(t)
	d := find[appsv1.Deployment](t, ms, "logpipe")
	job := find[batchv1.Job](t, ms, "logpipe-migrate")
	pods := labels.Set(d.Spec.Template.Labels)
	jobPods := labels.Set(job.Spec.Template.Labels)
	check := func(what string, sel labels.Selector) {
		if !sel.Matches(pods) {
			t.Errorf("%s selector %s does not match the consumers %v", what, sel, pods)
		}
		if sel.Matches(jobPods) {
			t.Errorf("%s selector %s matches the migrate Job's pods %v", what, sel, jobPods)
		}
	}
	for _, x := range []struct {
		what string
		sel  *metav1.LabelSelector
	}{
		{"Deployment", d.Spec.Selector},
		{"PodDisruptionBudget", find[policyv1.PodDisruptionBudget](t, ms, "logpipe").Spec.Selector},
	} {
		sel, err := metav1.LabelSelectorAsSelector(x.sel)
		if err != nil {
			t.Fatal(err)
		}
		check(x.what, sel)
	}
	for _, tsc := range d.Spec.Template.Spec.TopologySpreadConstraints {
		sel, err := metav1.LabelSelectorAsSelector(tsc.LabelSelector)
		if err != nil {
			t.Fatal(err)
		}
		check("topologySpreadConstraint "+tsc.TopologyKey, sel)
	}
	if len(d.Spec.Template.Spec.TopologySpreadConstraints) == 0 {
		t.Error("no topologySpreadConstraints")
	}
	check("Service", labels.SelectorFromSet(find[corev1.Service](t, ms, "logpipe-metrics").Spec.Selector))

	pdb := find[policyv1.PodDisruptionBudget](t, ms, "logpipe")
	if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 {
		t.Errorf("PodDisruptionBudget maxUnavailable %v, want 1", pdb.Spec.MaxUnavailable)
	}
	hpa := find[autoscalingv2.HorizontalPodAutoscaler](t, ms, "logpipe")
	if r := hpa.Spec.ScaleTargetRef; r.Kind != "Deployment" || r.Name != d.Name || r.APIVersion != "apps/v1" {
		t.Errorf("HPA targets %+v, not Deployment %s", r, d.Name)
	}
	if sa := d.Spec.Template.Spec.ServiceAccountName; sa == "" {
		t.Error("Deployment uses the default service account")
	} else {
		find[corev1.ServiceAccount](t, ms, sa)
	}
	for _, m := range ms {
		if m.namespace == "" || m.namespace == "kafka" || m.namespace == "clickhouse" {
			continue
		}
		find[corev1.Namespace](t, ms, m.namespace)
	}
}

// TestHPAWithinPartitions: a member beyond a topic's partition count owns
// nothing of it, so maxReplicas stays within the partitions; the lag
// metric is one logpipe exports.
func TestHPAWithinPartitions(t *testing.T) {
	ms := loadManifests(t)
	hpa := find[autoscalingv2.HorizontalPodAutoscaler](t, ms, "logpipe")
	minPartitions := int32(1 << 30)
	for _, tp := range all[kafkaTopic](ms) {
		minPartitions = min(minPartitions, tp.Spec.Partitions)
	}
	if hpa.Spec.MaxReplicas > minPartitions {
		t.Errorf("HPA maxReplicas %d > %d partitions", hpa.Spec.MaxReplicas, minPartitions)
	}
	if hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas < 2 || *hpa.Spec.MinReplicas > hpa.Spec.MaxReplicas {
		t.Errorf("HPA minReplicas %v (maxReplicas %d): want 2..max", hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas)
	}

	exported := map[string]bool{}
	descs := make(chan *prometheus.Desc, 16)
	(&metrics.Lag{}).Describe(descs)
	close(descs)
	for d := range descs {
		if m := regexp.MustCompile(`fqName: "([^"]+)"`).FindStringSubmatch(d.String()); m != nil {
			exported[m[1]] = true
		}
	}
	var cpu, lag bool
	for _, m := range hpa.Spec.Metrics {
		switch m.Type {
		case autoscalingv2.ResourceMetricSourceType:
			cpu = cpu || m.Resource.Name == corev1.ResourceCPU
		case autoscalingv2.ExternalMetricSourceType:
			if !exported[m.External.Metric.Name] {
				t.Errorf("HPA external metric %s is not one logpipe exports (%v)", m.External.Metric.Name, exported)
			}
			lag = true
		}
	}
	if !cpu || !lag {
		t.Errorf("HPA metrics: cpu %v, lag %v; want both", cpu, lag)
	}
}

// TestPodsAreSizedAndLockedDown: requests and limits set (GOMEMLIMIT
// below the memory limit), non-root, read-only root, no capabilities,
// RuntimeDefault seccomp, for every pod logpipe runs.
func TestPodsAreSizedAndLockedDown(t *testing.T) {
	ms := loadManifests(t)
	d := find[appsv1.Deployment](t, ms, "logpipe")
	job := find[batchv1.Job](t, ms, "logpipe-migrate")
	c := consumer(t, ms)
	want := map[corev1.ResourceName]string{corev1.ResourceCPU: "1", corev1.ResourceMemory: "256Mi"}
	for name, q := range want {
		if got := c.Resources.Requests[name]; got.Cmp(resource.MustParse(q)) != 0 {
			t.Errorf("consumer request %s = %s, want %s (docs/benchmarks.md)", name, got.String(), q)
		}
	}
	for _, pod := range []struct {
		name string
		spec corev1.PodSpec
	}{{"Deployment " + d.Name, d.Spec.Template.Spec}, {"Job " + job.Name, job.Spec.Template.Spec}} {
		ps := pod.spec.SecurityContext
		if ps == nil || ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot || ps.SeccompProfile == nil || ps.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("%s: pod securityContext %+v: want runAsNonRoot and seccomp RuntimeDefault", pod.name, ps)
		}
		for _, c := range pod.spec.Containers {
			where := pod.name + " container " + c.Name
			if len(c.Command) != 0 {
				t.Errorf("%s: command %q replaces the image's /logpipe entrypoint", where, c.Command)
			}
			cpu, mem, lim := c.Resources.Requests[corev1.ResourceCPU], c.Resources.Requests[corev1.ResourceMemory], c.Resources.Limits[corev1.ResourceMemory]
			if cpu.IsZero() || mem.IsZero() || lim.IsZero() || lim.Cmp(mem) < 0 {
				t.Errorf("%s: requests cpu %s memory %s, limit memory %s", where, cpu.String(), mem.String(), lim.String())
			}
			for _, e := range c.Env {
				if e.Name == "GOMEMLIMIT" {
					q, err := resource.ParseQuantity(strings.TrimSuffix(e.Value, "B"))
					if err != nil || q.Cmp(lim) >= 0 {
						t.Errorf("%s: GOMEMLIMIT %s is not below the memory limit %s (%v)", where, e.Value, lim.String(), err)
					}
				}
			}
			sc := c.SecurityContext
			if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
				sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
				sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
				t.Errorf("%s: securityContext %+v: want readOnlyRootFilesystem, no privilege escalation, drop ALL", where, sc)
			}
		}
	}
}

// TestKafkaTopics: partitions, three replicas with two in sync, seven
// days of retention.
func TestKafkaTopics(t *testing.T) {
	ms := loadManifests(t)
	topics := all[kafkaTopic](ms)
	var names []string
	for _, tp := range topics {
		names = append(names, tp.Name)
		if tp.Spec.Partitions != 12 || tp.Spec.Replicas != 3 {
			t.Errorf("KafkaTopic %s: %d partitions x %d replicas, want 12 x 3", tp.Name, tp.Spec.Partitions, tp.Spec.Replicas)
		}
		for k, want := range map[string]string{"retention.ms": "604800000", "min.insync.replicas": "2"} {
			if got := fmt.Sprint(tp.Spec.Config[k]); got != want {
				t.Errorf("KafkaTopic %s: %s = %s, want %s", tp.Name, k, got, want)
			}
		}
		if tp.Labels["strimzi.io/cluster"] == "" {
			t.Errorf("KafkaTopic %s: no strimzi.io/cluster label", tp.Name)
		}
	}
	sort.Strings(names)
	if want := []string{"cdn-logs", "job-logs"}; !slices.Equal(names, want) {
		t.Errorf("KafkaTopics %v, want %v", names, want)
	}
}

// TestClickHouseInstallation: 2 shards x 2 replicas with ZooKeeper, the
// templates it names exist, and the logpipe user's password comes from a
// Secret the manifests define.
func TestClickHouseInstallation(t *testing.T) {
	ms := loadManifests(t)
	chi := find[chiInstallation](t, ms, "logs")
	cfg := chi.Spec.Configuration
	if len(cfg.Clusters) != 1 || cfg.Clusters[0].Name != "logpipe" || cfg.Clusters[0].Layout.ShardsCount != 2 || cfg.Clusters[0].Layout.ReplicasCount != 2 {
		t.Errorf("clusters %+v: want logpipe, 2 shards x 2 replicas", cfg.Clusters)
	}
	if len(cfg.Zookeeper.Nodes) == 0 {
		t.Error("no zookeeper nodes: ReplicatedMergeTree needs them")
	}
	tpl := chi.Spec.Templates
	dt := chi.Spec.Defaults.Templates
	podIdx := slices.IndexFunc(tpl.PodTemplates, func(p chiPodTemplate) bool { return p.Name == dt.PodTemplate })
	if podIdx < 0 {
		t.Fatalf("defaults podTemplate %q is not defined", dt.PodTemplate)
	}
	if cs := tpl.PodTemplates[podIdx].Spec.Containers; len(cs) != 1 || cs[0].Image != "clickhouse/clickhouse-server:24.8" {
		t.Errorf("pod template containers %+v: want clickhouse/clickhouse-server:24.8", cs)
	}
	var vct, svc bool
	for _, v := range tpl.VolumeClaimTemplates {
		if v.Name == dt.DataVolumeClaimTemplate {
			st := v.Spec.Resources.Requests[corev1.ResourceStorage]
			vct = !st.IsZero()
		}
	}
	for _, s := range tpl.ServiceTemplates {
		if s.Name == dt.ServiceTemplate {
			svc = s.GenerateName == "clickhouse-{chi}" && s.Spec.Type == corev1.ServiceTypeClusterIP &&
				slices.ContainsFunc(s.Spec.Ports, func(p corev1.ServicePort) bool { return p.Port == 9000 })
		}
	}
	if !vct {
		t.Errorf("data volume claim template %q missing or without storage", dt.DataVolumeClaimTemplate)
	}
	if !svc {
		t.Errorf("service template %q missing, or not ClusterIP clickhouse-{chi} with port 9000", dt.ServiceTemplate)
	}
	checkCHIUsers(t, ms, chi)
}

func checkCHIUsers(t *testing.T, ms []manifest, chi *chiInstallation) {
	t.Helper()
	strict := func(raw json.RawMessage, v any) error {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		return dec.Decode(v)
	}
	for key, raw := range chi.Spec.Configuration.Users {
		user, setting, ok := strings.Cut(key, "/")
		if !ok || user == "" {
			t.Errorf("users key %q is not user/setting", key)
			continue
		}
		var err error
		switch setting {
		case "password":
			var ref secretKeyRef
			if err = strict(raw, &ref); err == nil {
				r := ref.ValueFrom.SecretKeyRef
				s := find[corev1.Secret](t, ms, r.Name)
				if s.Namespace != chi.Namespace {
					t.Errorf("user %s: Secret %s is in namespace %s, the installation in %s", user, s.Name, s.Namespace, chi.Namespace)
				}
				if _, ok := s.StringData[r.Key]; !ok {
					t.Errorf("user %s: Secret %s has no key %s", user, s.Name, r.Key)
				}
			}
		case "networks/ip":
			var nets []string
			err = strict(raw, &nets)
		case "profile", "quota":
			var s string
			err = strict(raw, &s)
		default:
			err = errors.New("unknown setting (add it to checkCHIUsers)")
		}
		if err != nil {
			t.Errorf("users %s: %v", key, err)
		}
	}
}

// TestContainerArgsMatchTheBinary builds cmd/logpipe and asks each
// subcommand the manifests and the compose file run for its flags
// (`logpipe SUB -h`): the subcommand exists and every flag is defined.
func TestContainerArgsMatchTheBinary(t *testing.T) {
	ms := loadManifests(t)
	bin := filepath.Join(t.TempDir(), "logpipe")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/logpipe").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	runs := map[string][]string{
		"Deployment logpipe":  consumer(t, ms).Args,
		"Job logpipe-migrate": find[batchv1.Job](t, ms, "logpipe-migrate").Spec.Template.Spec.Containers[0].Args,
	}
	for name, svc := range loadCompose(t).Services {
		if svc.Build != nil {
			runs["compose "+name] = svc.Command
		}
	}
	flagLine := regexp.MustCompile(`(?m)^\s+-([a-zA-Z0-9-]+)`)
	for what, args := range runs {
		if len(args) == 0 || strings.HasPrefix(args[0], "-") {
			t.Errorf("%s: args %q do not start with a subcommand", what, args)
			continue
		}
		out, err := exec.Command(bin, args[0], "-h").CombinedOutput()
		if err != nil {
			t.Errorf("%s: logpipe %s -h: %v\n%s", what, args[0], err, out)
			continue
		}
		defined := map[string]bool{}
		for _, m := range flagLine.FindAllStringSubmatch(string(out), -1) {
			defined[m[1]] = true
		}
		for _, a := range args[1:] {
			name, isFlag := strings.CutPrefix(a, "-")
			if !isFlag {
				continue
			}
			name, _, _ = strings.Cut(strings.TrimPrefix(name, "-"), "=")
			if defined[name] {
				continue
			}
			t.Errorf("%s: logpipe %s has no flag -%s (defined: %v)", what, args[0], name, defined)
		}
	}
}
