package chserver

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// Cluster is a local ClickHouse cluster named "logpipe": ZooKeeper and two
// servers started by deploy/local/cluster.sh.
type Cluster struct {
	Dir     string
	Layout  string // "2x1" (2 shards x 1 replica) or "1x2" (1 shard x 2 replicas)
	ZKPort  int
	Servers []*Server
	script  string
}

// StartCluster installs what is missing (zookeeper, clickhouse-server) and
// starts a cluster in dir with the given layout.
func StartCluster(ctx context.Context, dir, layout string) (*Cluster, error) {
	chScript, err := ScriptPath()
	if err != nil {
		return nil, err
	}
	script := filepath.Join(filepath.Dir(chScript), "cluster.sh")
	if out, err := exec.CommandContext(ctx, "bash", script, "install").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("chserver: cluster install: %v\n%s", err, out)
	}
	out, err := exec.CommandContext(ctx, "bash", script, "start", dir, layout).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("chserver: cluster start: %v\n%s", err, out)
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
			env[k] = v
		}
	}
	c := &Cluster{Dir: dir, Layout: env["LAYOUT"], script: script}
	c.ZKPort, _ = strconv.Atoi(env["ZK_PORT"])
	for i := 1; i <= 2; i++ {
		tcp, _ := strconv.Atoi(env[fmt.Sprintf("CH%d_TCP", i)])
		http, _ := strconv.Atoi(env[fmt.Sprintf("CH%d_HTTP", i)])
		if tcp == 0 || http == 0 {
			return nil, fmt.Errorf("chserver: cluster start printed no ports for server %d:\n%s", i, out)
		}
		// The server runs already: this attaches to it (same dir, same ports).
		s, err := StartWithOptions(ctx, filepath.Join(dir, fmt.Sprintf("ch%d", i)), Options{TCPPort: tcp, HTTPPort: http})
		if err != nil {
			c.Stop()
			return nil, err
		}
		c.Servers = append(c.Servers, s)
	}
	return c, nil
}

// StartZooKeeper starts the cluster's ZooKeeper again (same port, same
// data) after a test stopped or killed it, and returns once it serves
// requests; the servers reconnect by themselves.
func (c *Cluster) StartZooKeeper(ctx context.Context) error {
	out, err := exec.CommandContext(ctx, "bash", c.script, "zk-start", c.Dir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("chserver: zookeeper start: %v\n%s", err, out)
	}
	return nil
}

// Stop stops both servers and ZooKeeper.
func (c *Cluster) Stop() error {
	out, err := exec.Command("bash", c.script, "stop", c.Dir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("chserver: cluster stop: %v\n%s", err, out)
	}
	return nil
}
