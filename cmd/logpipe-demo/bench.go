package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/logpipe/logpipe/chclient"
	"github.com/logpipe/logpipe/cmd/internal/app"
	"github.com/logpipe/logpipe/config"
	"github.com/logpipe/logpipe/internal/chserver"
	"github.com/logpipe/logpipe/internal/kafkabroker"
	"github.com/logpipe/logpipe/sample"
)

// cmdBench measures the whole path on this machine the way the issue
// measures it: realistic Fastly lines preloaded into a Kafka-protocol
// broker (kfake) that runs in a child process, consumed into the local
// ClickHouse by logpipe in another child process, whose own CPU
// (utime+stime) and peak RSS (VmHWM) are the figures. Each partition
// count runs -runs times (medians reported), plus -runs runs under
// GOMEMLIMIT; then a fixed-rate phase measures produce-to-queryable
// latency.
func cmdBench(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	dir := fs.String("dir", ".logpipe-bench", "directory for the local ClickHouse server")
	records := fs.Int("records", 1_000_000, "records to preload and ingest")
	partitionList := fs.String("partitions", "4,16,64", "partition counts to measure, comma-separated")
	runs := fs.Int("runs", 3, "runs per configuration (the median is reported)")
	memLimit := fs.String("gomemlimit", "450MiB", "GOMEMLIMIT of the extra runs at the first partition count (empty = none)")
	rate := fs.Int("rate", 0, "records/s for the latency phase (0 = half the measured throughput)")
	latencyFor := app.DurationFlag(fs, "latency-for", 10*time.Second, "length of the latency phase (0 = none)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the first run's consumer to this file (and its heap profile, when the records are stored, to this file.heap)")
	peer := fs.String("peer", "", "another consumer to measure beside logpipe at the first partition count, same records and ClickHouse: a command line with {config} for -peer-config's file after substitution")
	peerConfig := fs.String("peer-config", "", "the peer's config template; {brokers}, {clickhouse_host}, {clickhouse_port}, {database}, {group} are substituted")
	peerSQL := fs.String("peer-sql", "", "SQL creating the peer's table in {database}, run before each peer run")
	peerTable := fs.String("peer-table", "", "the peer's table, counted to know when it has caught up")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var parts []int
	for _, f := range strings.Split(*partitionList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return usageError{fmt.Errorf("bench: -partitions: %q is not a positive number", f)}
		}
		parts = append(parts, n)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	chDir, _ := filepath.Abs(filepath.Join(*dir, "clickhouse"))
	ch, err := chserver.Start(ctx, chDir)
	if err != nil {
		return err
	}
	// The server is the bench's own: left running, it would go on
	// merging beside the next measurement.
	defer ch.Stop()
	version, _ := ch.Version(ctx)
	key := make([]byte, 32)
	rand.Read(key)
	cfg := config.Default()
	cfg.Kafka.Group = "bench"
	cfg.ClickHouse.Addr = []string{ch.TCPAddr}
	cfg.ClickHouse.Database = "logpipe_bench"
	cfg.Hash.Key = hex.EncodeToString(key)
	cfg.Streams = []config.Stream{{Name: "cdn", Topic: "cdn", Format: "fastly-json"}}

	fmt.Fprintf(stdout, "generating %d Fastly lines...\n", *records)
	lines, _ := sample.CDN(3, sample.CDNOptions{Requests: *records, Start: time.Now().Add(-time.Hour), Span: time.Hour})
	var inBytes int64
	msgs := make([]kafka.Message, len(lines))
	for i, l := range lines {
		msgs[i] = kafka.Message{Key: l.Key, Value: l.Value}
		inBytes += int64(len(l.Value))
	}
	lines = nil
	fmt.Fprintf(stdout, "%d records, %.0f bytes each on average; load average at start: %s\n", *records, float64(inBytes)/float64(*records), loadAvg())

	type config_ struct {
		partitions int
		env        string
	}
	var configs []config_
	for _, n := range parts {
		configs = append(configs, config_{partitions: n})
	}
	if *memLimit != "" {
		configs = append(configs, config_{partitions: parts[0], env: "GOMEMLIMIT=" + *memLimit})
	}
	var results [][]benchResult
	var peerResults []benchResult
	var latency string
	for ci, bc := range configs {
		broker, err := startBenchBroker(ctx, self, bc.partitions)
		if err != nil {
			return err
		}
		cfg.Kafka.Brokers = broker.addrs
		fmt.Fprintf(stdout, "producing into %d partitions (broker: child process %d)...\n", bc.partitions, broker.cmd.Process.Pid)
		if err := produceAll(ctx, broker.addrs, msgs); err != nil {
			broker.stop()
			return err
		}
		var rs []benchResult
		for run := 1; run <= *runs; run++ {
			if err := ch.Exec(ctx, "DROP DATABASE IF EXISTS logpipe_bench"); err != nil {
				broker.stop()
				return err
			}
			if err := app.Migrate(ctx, cfg, io.Discard, quiet); err != nil {
				broker.stop()
				return err
			}
			cfg.Kafka.Group = fmt.Sprintf("bench-%d-%d", ci, run)
			prof := ""
			if ci == 0 && run == 1 {
				prof = *cpuProfile
			}
			server0, _ := procCPU(ch.PID())
			child, err := startBenchConsumer(ctx, self, cfg, *records, prof, bc.env)
			if err != nil {
				broker.stop()
				return err
			}
			r, err := child.result()
			server1, _ := procCPU(ch.PID())
			r.ServerCPUSeconds = server1 - server0
			if err == nil && ci == 0 && run == 1 && *latencyFor > 0 {
				conn, cerr := chclient.Open(ctx, app.SinkOptions(cfg))
				if cerr == nil {
					latency = latencyPhase(ctx, conn, broker.addrs, *rate, int(r.recordsPerSecond()/2), *latencyFor, log)
					conn.Close()
				}
			}
			child.stop()
			if err != nil {
				broker.stop()
				return fmt.Errorf("bench: %d partitions %s run %d: %w", bc.partitions, bc.env, run, err)
			}
			r.load = loadAvg()
			fmt.Fprintf(stdout, "  %d partitions %s run %d: %.1f s, %.0f records/s, %.2f CPU s per 1M records, peak RSS %d MiB, budget %d MiB (peak charged %d MiB), ClickHouse %.2f CPU s per 1M, load %s\n",
				bc.partitions, bc.env, run, r.Seconds, r.recordsPerSecond(), r.cpuPerMillion(), r.VmHWM>>20, r.Budget>>20, r.BudgetPeak>>20, r.serverPerMillion(), r.load)
			rs = append(rs, r)
		}
		if ci == 0 && *peer != "" {
			var prs []benchResult
			for run := 1; run <= *runs; run++ {
				r, err := runPeer(ctx, ch, broker.addrs, *peer, *peerConfig, *peerSQL, *peerTable, fmt.Sprintf("peer-%d", run), int64(*records))
				if err != nil {
					broker.stop()
					return fmt.Errorf("bench: peer run %d: %w", run, err)
				}
				r.load = loadAvg()
				fmt.Fprintf(stdout, "  peer %d partitions run %d: %.1f s, %.0f records/s, %.2f CPU s per 1M records, peak RSS %d MiB, ClickHouse %.2f CPU s per 1M, load %s\n",
					bc.partitions, run, r.Seconds, r.recordsPerSecond(), r.cpuPerMillion(), r.VmHWM>>20, r.serverPerMillion(), r.load)
				prs = append(prs, r)
			}
			peerResults = prs
		}
		broker.stop()
		results = append(results, rs)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "partitions\tenv\trecords\trecords/s wall\trecords per CPU-second\tCPU s per 1M records\tpeak RSS MiB\tbudget MiB\tClickHouse CPU s per 1M\n")
	for i, bc := range configs {
		rs := results[i]
		env := bc.env
		if env == "" {
			env = "-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%.0f\t%.0f\t%.2f\t%.0f\t%d\t%.2f\n", bc.partitions, env, *records,
			median(rs, benchResult.recordsPerSecond), median(rs, func(r benchResult) float64 { return 1e6 / r.cpuPerMillion() }),
			median(rs, benchResult.cpuPerMillion), median(rs, func(r benchResult) float64 { return float64(r.VmHWM >> 20) }), rs[0].Budget>>20,
			median(rs, benchResult.serverPerMillion))
	}
	if len(peerResults) > 0 {
		rs := peerResults
		fmt.Fprintf(tw, "%d\tpeer\t%d\t%.0f\t%.0f\t%.2f\t%.0f\t-\t%.2f\n", configs[0].partitions, *records,
			median(rs, benchResult.recordsPerSecond), median(rs, func(r benchResult) float64 { return 1e6 / r.cpuPerMillion() }),
			median(rs, benchResult.cpuPerMillion), median(rs, func(r benchResult) float64 { return float64(r.VmHWM >> 20) }),
			median(rs, benchResult.serverPerMillion))
	}
	tw.Flush()
	if latency != "" {
		fmt.Fprintln(stdout, latency)
	}
	fmt.Fprintf(stdout, "medians of %d runs; machine: %d CPUs; ClickHouse %s on the same machine; broker (kfake) in its own process, excluded; CPU and peak RSS of the logpipe consumer process alone; load average at end: %s\n",
		*runs, runtime.NumCPU(), version, loadAvg())
	return nil
}

// benchResult is what one consumer child reports.
type benchResult struct {
	Records    int64   `json:"records"`
	Seconds    float64 `json:"seconds"`     // wall, from the first poll to the last record stored
	CPUSeconds float64 `json:"cpu_seconds"` // utime+stime of the consumer process, start to catch-up
	VmHWM      int64   `json:"vmhwm"`       // bytes
	Budget     int64   `json:"budget"`
	BudgetPeak int64   `json:"budget_peak"`
	// ServerCPUSeconds is the ClickHouse server's utime+stime over the
	// run (the parent reads it; its background merges included).
	ServerCPUSeconds float64 `json:"-"`
	load             string
}

func (r benchResult) recordsPerSecond() float64 { return float64(r.Records) / r.Seconds }
func (r benchResult) cpuPerMillion() float64    { return r.CPUSeconds / float64(r.Records) * 1e6 }
func (r benchResult) serverPerMillion() float64 { return r.ServerCPUSeconds / float64(r.Records) * 1e6 }

func median(rs []benchResult, f func(benchResult) float64) float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	sort.Float64s(v)
	if len(v) == 0 {
		return 0
	}
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// benchChild is a child process of the bench: it runs until its stdin is
// closed.
type benchChild struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Scanner
	addrs []string
}

func startBenchChild(ctx context.Context, self string, env []string, args ...string) (*benchChild, error) {
	cmd := exec.CommandContext(ctx, self, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &benchChild{cmd: cmd, stdin: stdin, out: bufio.NewScanner(stdout)}, nil
}

func (c *benchChild) line() (string, error) {
	if !c.out.Scan() {
		if err := c.out.Err(); err != nil {
			return "", err
		}
		return "", fmt.Errorf("child %s exited: %v", c.cmd.Args[1], c.cmd.Wait())
	}
	return c.out.Text(), nil
}

func (c *benchChild) stop() {
	c.stdin.Close()
	done := make(chan struct{})
	go func() { c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		c.cmd.Process.Kill()
		<-done
	}
}

func (c *benchChild) result() (benchResult, error) {
	l, err := c.line()
	if err != nil {
		return benchResult{}, err
	}
	var r benchResult
	if err := json.Unmarshal([]byte(l), &r); err != nil {
		return r, fmt.Errorf("consumer child said %q: %w", l, err)
	}
	return r, nil
}

func startBenchBroker(ctx context.Context, self string, partitions int) (*benchChild, error) {
	c, err := startBenchChild(ctx, self, nil, "bench-broker", "-partitions", strconv.Itoa(partitions))
	if err != nil {
		return nil, err
	}
	l, err := c.line()
	if err != nil {
		c.stop()
		return nil, err
	}
	c.addrs = strings.Split(l, ",")
	return c, nil
}

func startBenchConsumer(ctx context.Context, self string, cfg config.Config, records int, cpuProfile, env string) (*benchChild, error) {
	var envs []string
	if env != "" {
		envs = append(envs, env)
	}
	memProfile := ""
	if cpuProfile != "" {
		memProfile = cpuProfile + ".heap"
	}
	return startBenchChild(ctx, self, envs, "bench-consume",
		"-brokers", strings.Join(cfg.Kafka.Brokers, ","), "-clickhouse", cfg.ClickHouse.Addr[0],
		"-database", cfg.ClickHouse.Database, "-group", cfg.Kafka.Group, "-key", cfg.Hash.Key,
		"-records", strconv.Itoa(records), "-cpuprofile", cpuProfile, "-memprofile", memProfile)
}

func produceAll(ctx context.Context, addrs []string, msgs []kafka.Message) error {
	// As a producer in front of a real Kafka would: lz4-compressed batches
	// of at most 1 MiB of records (Kafka's default message.max.bytes and
	// max.request.size are about 1 MiB, so a broker refuses larger ones):
	// about 1,400 of these records per batch.
	w := &kafka.Writer{Addr: kafka.TCP(addrs...), Topic: "cdn", Balancer: &kafka.Hash{}, BatchSize: 5000, BatchBytes: 1 << 20, BatchTimeout: 5 * time.Millisecond, RequiredAcks: kafka.RequireAll, Compression: kafka.Lz4}
	defer w.Close()
	for len(msgs) > 0 {
		n := min(len(msgs), 50_000)
		if err := w.WriteMessages(ctx, msgs[:n]...); err != nil {
			return err
		}
		msgs = msgs[n:]
	}
	return nil
}

// cmdBenchBroker is the bench's broker child: a kfake broker whose
// addresses it prints, running until stdin is closed.
func cmdBenchBroker(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("bench-broker", flag.ContinueOnError)
	partitions := fs.Int("partitions", 4, "partitions of the topic")
	if err := fs.Parse(args); err != nil {
		return err
	}
	broker, err := kafkabroker.Start(kafkabroker.Options{Partitions: int32(*partitions), Topics: []string{"cdn"}})
	if err != nil {
		return err
	}
	defer broker.Close()
	fmt.Fprintln(stdout, strings.Join(broker.Addrs, ","))
	io.Copy(io.Discard, os.Stdin)
	return nil
}

// cmdBenchConsume is the bench's consumer child: logpipe's pipeline with
// default settings consuming until -records are stored, when it prints its
// figures as one JSON line; then it consumes on until stdin is closed.
func cmdBenchConsume(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("bench-consume", flag.ContinueOnError)
	brokers := fs.String("brokers", "", "broker addresses")
	chAddr := fs.String("clickhouse", "", "ClickHouse native address")
	database := fs.String("database", "", "database")
	group := fs.String("group", "", "consumer group")
	key := fs.String("key", "", "hash key (hex)")
	records := fs.Int64("records", 0, "records to wait for")
	cpuProfile := fs.String("cpuprofile", "", "CPU profile file")
	memProfile := fs.String("memprofile", "", "heap profile file, written when the records are stored")
	if err := fs.Parse(args); err != nil {
		return err
	}
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	cfg := config.Default()
	cfg.Kafka.Brokers = strings.Split(*brokers, ",")
	cfg.Kafka.Group = *group
	cfg.ClickHouse.Addr = []string{*chAddr}
	cfg.ClickHouse.Database = *database
	cfg.Hash.Key = *key
	cfg.Streams = []config.Stream{{Name: "cdn", Topic: "cdn", Format: "fastly-json"}}
	conn, err := chclient.Open(ctx, app.SinkOptions(cfg))
	if err != nil {
		return err
	}
	defer conn.Close()
	p, _, err := app.NewPipeline(cfg, conn, quiet)
	if err != nil {
		return err
	}
	c, err := app.NewConsumer(cfg, p, quiet)
	if err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- app.ConsumeWith(runCtx, cfg, p, c, quiet) }()
	for p.Stats.Rows.Load()+p.Stats.Rejected.Load() < *records {
		select {
		case err := <-done:
			return fmt.Errorf("bench: pipeline stopped: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	r := benchResult{Records: *records, Seconds: time.Since(start).Seconds(), CPUSeconds: cpuTime().Seconds(), VmHWM: vmHWM()}
	if *cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	if *memProfile != "" {
		if f, err := os.Create(*memProfile); err == nil {
			pprof.WriteHeapProfile(f)
			f.Close()
		}
	}
	r.Budget, r.BudgetPeak = c.BudgetStats()
	b, _ := json.Marshal(r)
	fmt.Fprintln(stdout, string(b))
	io.Copy(io.Discard, os.Stdin)
	stop()
	<-done
	return nil
}

// latencyPhase produces at a fixed rate in 100 ms steps into the running
// consumer's topic and notes when ClickHouse first counts each step's
// last record.
func latencyPhase(ctx context.Context, conn *chclient.Conn, addrs []string, rate, dflt int, length time.Duration, log *slog.Logger) string {
	if rate == 0 {
		rate = dflt
	}
	stored := func() int64 {
		n, err := chclient.Value[uint64](ctx, conn, "SELECT count() FROM cdn_requests")
		if err != nil {
			return -1
		}
		return int64(n)
	}
	base := stored()
	perStep := max(rate/10, 1)
	steps := int(length / (100 * time.Millisecond))
	extra, _ := sample.CDN(4, sample.CDNOptions{Requests: perStep * steps, Start: time.Now(), Span: length})
	type mark struct {
		upTo int64
		at   time.Time
	}
	marks := make(chan mark, steps)
	w := &kafka.Writer{Addr: kafka.TCP(addrs...), Topic: "cdn", Balancer: &kafka.Hash{}, BatchTimeout: time.Millisecond, RequiredAcks: kafka.RequireAll}
	defer w.Close()
	go func() {
		defer close(marks)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for s := 0; s < steps; s++ {
			<-tick.C
			chunk := extra[s*perStep : (s+1)*perStep]
			ms := make([]kafka.Message, len(chunk))
			for i, l := range chunk {
				ms[i] = kafka.Message{Key: l.Key, Value: l.Value}
			}
			if err := w.WriteMessages(ctx, ms...); err != nil {
				log.Error("bench: produce", "err", err)
				return
			}
			marks <- mark{upTo: base + int64((s+1)*perStep), at: time.Now()}
		}
	}()
	var lat []time.Duration
	var pending []mark
	open := true
	for open || len(pending) > 0 {
		select {
		case m, ok := <-marks:
			if !ok {
				open = false
			} else {
				pending = append(pending, m)
			}
		case <-time.After(25 * time.Millisecond):
		}
		if len(pending) == 0 {
			continue
		}
		n := stored()
		now := time.Now()
		for len(pending) > 0 && n >= pending[0].upTo {
			lat = append(lat, now.Sub(pending[0].at))
			pending = pending[1:]
		}
		if !open && len(pending) > 0 && now.Sub(pending[0].at) > time.Minute {
			break
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(q float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(q*float64(len(lat))))]
	}
	return fmt.Sprintf("latency (produce to queryable) at %d records/s for %s, first configuration: p50 %s, p99 %s",
		rate, length, pct(0.5).Round(time.Millisecond), pct(0.99).Round(time.Millisecond))
}

// runPeer runs another consumer (clickhouse_sinker) on the preloaded
// topic into its own table in a fresh database, until the table holds
// records rows; its CPU (utime+stime) and VmHWM are read from /proc then.
func runPeer(ctx context.Context, ch *chserver.Server, brokers []string, command, configTmpl, sqlFile, table, group string, records int64) (benchResult, error) {
	const db = "peer_bench"
	host, port, _ := net.SplitHostPort(ch.TCPAddr)
	subst := strings.NewReplacer("{brokers}", strings.Join(brokers, ","), "{clickhouse_host}", host, "{clickhouse_port}", port, "{database}", db, "{group}", group)
	if err := ch.Exec(ctx, "DROP DATABASE IF EXISTS "+db); err != nil {
		return benchResult{}, err
	}
	if err := ch.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		return benchResult{}, err
	}
	if sqlFile != "" {
		b, err := os.ReadFile(sqlFile)
		if err != nil {
			return benchResult{}, err
		}
		if err := ch.Exec(ctx, subst.Replace(string(b))); err != nil {
			return benchResult{}, err
		}
	}
	cfgFile := ""
	if configTmpl != "" {
		b, err := os.ReadFile(configTmpl)
		if err != nil {
			return benchResult{}, err
		}
		f, err := os.CreateTemp("", "peer-config-*"+filepath.Ext(configTmpl))
		if err != nil {
			return benchResult{}, err
		}
		defer os.Remove(f.Name())
		f.WriteString(subst.Replace(string(b)))
		f.Close()
		cfgFile = f.Name()
	}
	args := strings.Fields(strings.ReplaceAll(command, "{config}", cfgFile))
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	logFile, _ := os.Create(filepath.Join(os.TempDir(), "logpipe-bench-peer.log"))
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	server0, _ := procCPU(ch.PID())
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return benchResult{}, err
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	exited := make(chan struct{})
	go func() { cmd.Process.Wait(); close(exited) }()
	deadline := time.Now().Add(30 * time.Minute)
	for {
		out, err := ch.Query(ctx, fmt.Sprintf("SELECT count() FROM %s.%s", db, table))
		if n, _ := strconv.ParseInt(strings.TrimSpace(out), 10, 64); err == nil && n >= records {
			break
		}
		select {
		case <-exited:
			return benchResult{}, fmt.Errorf("%s exited early (log: %s)", args[0], logFile.Name())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return benchResult{}, fmt.Errorf("%s did not store %d rows in 30 minutes", args[0], records)
		}
	}
	r := benchResult{Records: records, Seconds: time.Since(start).Seconds()}
	r.CPUSeconds, r.VmHWM = procCPU(cmd.Process.Pid)
	server1, _ := procCPU(ch.PID())
	r.ServerCPUSeconds = server1 - server0
	return r, nil
}

// procCPU reads a process's utime+stime (seconds) and VmHWM (bytes).
func procCPU(pid int) (float64, int64) {
	var cpu float64
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		// Fields after the command name, which is in parentheses.
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) > 12 {
			ut, _ := strconv.ParseFloat(f[11], 64)
			st, _ := strconv.ParseFloat(f[12], 64)
			cpu = (ut + st) / 100 // USER_HZ
		}
	}
	var hwm int64
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
				n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				hwm = n << 10
			}
		}
	}
	return cpu, hwm
}

// vmHWM is this process's peak resident set size (VmHWM) in bytes.
func vmHWM() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return peakRSS()
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n << 10
		}
	}
	return peakRSS()
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// peakRSS is this process's maximum resident set size in bytes.
func peakRSS() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Maxrss * 1024
}
