package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/logpipe/logpipe/config"
	"github.com/logpipe/logpipe/internal/chserver"
	"github.com/logpipe/logpipe/internal/kafkabroker"
	"github.com/logpipe/logpipe/sample"
	"github.com/logpipe/logpipe/sink"
)

// cmdBench measures the whole path on this machine: realistic Fastly
// lines preloaded into an in-process Kafka broker, ingested into the local
// ClickHouse; then a fixed-rate phase for produce-to-queryable latency.
func cmdBench(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	dir := fs.String("dir", ".logpipe-bench", "directory for the local ClickHouse server")
	records := fs.Int("records", 1_000_000, "records to preload and ingest")
	partitions := fs.Int("partitions", 4, "partitions of the topic")
	rate := fs.Int("rate", 0, "records/s for the latency phase (0 = half the measured throughput)")
	latencyFor := durationFlag(fs, "latency-for", 10*time.Second, "length of the latency phase")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the ingest phase to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	quiet := redactingLogger(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	broker, err := kafkabroker.Start(kafkabroker.Options{Partitions: int32(*partitions), Topics: []string{"cdn"}})
	if err != nil {
		return err
	}
	defer broker.Close()
	chDir, _ := filepath.Abs(filepath.Join(*dir, "clickhouse"))
	ch, err := chserver.Start(ctx, chDir)
	if err != nil {
		return err
	}
	version, _ := ch.Version(ctx)
	key := make([]byte, 32)
	rand.Read(key)
	cfg := config.Default()
	cfg.Kafka.Brokers = broker.Addrs
	cfg.Kafka.Group = "bench"
	cfg.ClickHouse.Addr = []string{ch.TCPAddr}
	cfg.ClickHouse.Database = "logpipe_bench"
	cfg.Hash.Key = hex.EncodeToString(key)
	cfg.Streams = []config.Stream{{Name: "cdn", Topic: "cdn", Format: "fastly-json"}}
	if err := ch.Exec(ctx, "DROP DATABASE IF EXISTS logpipe_bench"); err != nil {
		return err
	}
	if err := migrateDB(ctx, cfg, io.Discard, quiet); err != nil {
		return err
	}
	conn, err := sink.Open(ctx, sinkOptions(cfg))
	if err != nil {
		return err
	}
	defer conn.Close()

	fmt.Fprintf(stdout, "generating and producing %d Fastly lines into %d partitions...\n", *records, *partitions)
	lines, _ := sample.CDN(3, sample.CDNOptions{Requests: *records, Start: time.Now().Add(-time.Hour), Span: time.Hour})
	var inBytes int64
	msgs := make([]kafka.Message, len(lines))
	for i, l := range lines {
		msgs[i] = kafka.Message{Key: l.Key, Value: l.Value}
		inBytes += int64(len(l.Value))
	}
	if err := broker.Produce(ctx, "cdn", msgs...); err != nil {
		return err
	}
	msgs, lines = nil, nil

	p, err := newPipeline(cfg, conn, quiet)
	if err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	cpu0 := cpuTime()
	start := time.Now()
	go func() { done <- consume(runCtx, cfg, p, quiet) }()
	for p.Stats.Rows.Load()+p.Stats.Rejected.Load() < int64(*records) {
		select {
		case err := <-done:
			return fmt.Errorf("bench: pipeline stopped: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	if *cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	throughput := float64(*records) / elapsed.Seconds()

	// Latency: produce at a fixed rate in 100 ms steps and note when
	// ClickHouse first counts each step's last record.
	if *rate == 0 {
		*rate = int(throughput / 2)
	}
	stored := func() int64 {
		r, err := conn.QueryStrings(ctx, "SELECT toString(count()) FROM cdn_requests")
		if err != nil {
			return -1
		}
		n, _ := strconv.ParseInt(r[0][0], 10, 64)
		return n
	}
	base := stored()
	perStep := max(*rate/10, 1)
	steps := int(*latencyFor / (100 * time.Millisecond))
	extra, _ := sample.CDN(4, sample.CDNOptions{Requests: perStep * steps, Start: time.Now(), Span: *latencyFor})
	type mark struct {
		upTo int64
		at   time.Time
	}
	marks := make(chan mark, steps)
	w := broker.NewWriter("cdn")
	w.BatchTimeout = time.Millisecond
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
	w.Close()
	stop()
	<-done
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(q float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(q*float64(len(lat))))]
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "records\tseconds\trecords/s\tMB/s\tCPU s per 1M records\tpeak RSS MiB\tlatency rate/s\tp50\tp99\n")
	fmt.Fprintf(tw, "%d\t%.2f\t%.0f\t%.1f\t%.2f\t%d\t%d\t%s\t%s\n", *records, elapsed.Seconds(), throughput,
		float64(inBytes)/elapsed.Seconds()/1e6, cpu.Seconds()/float64(*records)*1e6, peakRSS()>>20, *rate,
		pct(0.5).Round(time.Millisecond), pct(0.99).Round(time.Millisecond))
	tw.Flush()
	fmt.Fprintf(stdout, "machine: %d CPUs; ClickHouse %s on the same machine; CPU and RSS are this process's, which also runs the kfake broker\n", runtime.NumCPU(), version)
	return nil
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
