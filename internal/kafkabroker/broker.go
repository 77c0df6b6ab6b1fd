// Package kafkabroker runs an in-process Kafka broker (franz-go's kfake,
// which speaks the real Kafka wire protocol) for tests and the demo, and
// produces to it with kafka-go, the client logpipe uses everywhere.
package kafkabroker

import (
	"context"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
)

// Broker is a running in-process broker.
type Broker struct {
	cluster *kfake.Cluster
	Addrs   []string
}

// Options configure Start.
type Options struct {
	Partitions int32
	Topics     []string
	// DataDir, if set, persists the broker's log so a restarted broker
	// (same DataDir and Port) keeps its records and committed offsets.
	DataDir string
	// Port, if not 0, is the port to listen on (loopback).
	Port int
}

// Start starts a one-node broker with the given topics.
func Start(o Options) (*Broker, error) {
	if o.Partitions == 0 {
		o.Partitions = 1
	}
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(o.Partitions, o.Topics...)}
	if o.DataDir != "" {
		opts = append(opts, kfake.DataDir(o.DataDir))
	}
	if o.Port != 0 {
		opts = append(opts, kfake.Ports(o.Port))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("kfake: %w", err)
	}
	return &Broker{cluster: c, Addrs: c.ListenAddrs()}, nil
}

// Close stops the broker.
func (b *Broker) Close() { b.cluster.Close() }

// Cluster exposes kfake's control surface (fault injection, leader moves).
func (b *Broker) Cluster() *kfake.Cluster { return b.cluster }

// NewWriter returns a kafka-go writer to the broker that spreads records
// over partitions by key hash, in batches.
func (b *Broker) NewWriter(topic string) *kafka.Writer {
	return &kafka.Writer{
		Addr:         kafka.TCP(b.Addrs...),
		Topic:        topic,
		Balancer:     &kafka.Hash{},
		BatchSize:    5000,
		BatchBytes:   16 << 20,
		BatchTimeout: 5 * time.Millisecond,
		RequiredAcks: kafka.RequireAll,
		Compression:  kafka.Lz4,
	}
}

// Produce writes msgs to topic and waits for the broker to acknowledge
// them.
func (b *Broker) Produce(ctx context.Context, topic string, msgs ...kafka.Message) error {
	w := b.NewWriter(topic)
	defer w.Close()
	for len(msgs) > 0 {
		n := min(len(msgs), 5000)
		if err := w.WriteMessages(ctx, msgs[:n]...); err != nil {
			return fmt.Errorf("produce to %s: %w", topic, err)
		}
		msgs = msgs[n:]
	}
	return nil
}
