package ingest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/segmentio/kafka-go"
)

// Lag reads how far a consumer group is behind each partition of its
// topics: the partition's end offset (the offset the next produced record
// will get) minus the group's committed offset. It asks the brokers
// (metadata, list offsets, offset fetch), so it covers every partition of
// the group, not only those this process owns. A partition the group
// never committed counts from its first offset.
type Lag struct {
	Client *kafka.Client
	Group  string
	Topics []string
}

// NewLag returns a Lag asking brokers (host:port) about group's offsets
// on topics, with dialer's TLS and SASL settings (nil: plain TCP).
func NewLag(brokers []string, group string, topics []string, dialer *kafka.Dialer) *Lag {
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 5 * time.Second}
	if dialer != nil {
		c.Transport = &kafka.Transport{TLS: dialer.TLS, SASL: dialer.SASLMechanism, DialTimeout: dialer.Timeout}
	}
	return &Lag{Client: c, Group: group, Topics: topics}
}

// PartitionLag is the group's position in one partition.
type PartitionLag struct {
	Topic     string
	Partition int
	First     int64 // oldest offset still in the log
	End       int64 // offset of the next record to be produced
	Committed int64 // -1 = the group never committed
	Lag       int64
}

// Read asks the brokers for every partition's offsets and the group's
// commits.
func (l *Lag) Read(ctx context.Context) ([]PartitionLag, error) {
	md, err := l.Client.Metadata(ctx, &kafka.MetadataRequest{Topics: l.Topics})
	if err != nil {
		return nil, fmt.Errorf("metadata of %v: %w", l.Topics, err)
	}
	list := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	fetch := &kafka.OffsetFetchRequest{GroupID: l.Group, Topics: map[string][]int{}}
	for _, t := range md.Topics {
		if t.Error != nil {
			return nil, fmt.Errorf("metadata of topic %s: %w", t.Name, t.Error)
		}
		for _, p := range t.Partitions {
			list.Topics[t.Name] = append(list.Topics[t.Name], kafka.FirstOffsetOf(p.ID), kafka.LastOffsetOf(p.ID))
			fetch.Topics[t.Name] = append(fetch.Topics[t.Name], p.ID)
		}
	}
	offs, err := l.Client.ListOffsets(ctx, list)
	if err != nil {
		return nil, fmt.Errorf("list offsets: %w", err)
	}
	committed, err := l.Client.OffsetFetch(ctx, fetch)
	if err == nil {
		err = committed.Error
	}
	if errors.Is(err, kafka.GroupIdNotFound) {
		// A group that never joined has committed nothing.
		committed, err = &kafka.OffsetFetchResponse{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("offsets committed by group %s: %w", l.Group, err)
	}
	type tp struct {
		topic string
		part  int
	}
	commits := map[tp]int64{}
	for topic, ps := range committed.Topics {
		for _, p := range ps {
			if p.Error != nil {
				return nil, fmt.Errorf("offset committed by group %s on %s/%d: %w", l.Group, topic, p.Partition, p.Error)
			}
			commits[tp{topic, p.Partition}] = p.CommittedOffset
		}
	}
	var out []PartitionLag
	for topic, ps := range offs.Topics {
		for _, p := range ps {
			if p.Error != nil {
				return nil, fmt.Errorf("offsets of %s/%d: %w", topic, p.Partition, p.Error)
			}
			pl := PartitionLag{Topic: topic, Partition: p.Partition, First: p.FirstOffset, End: p.LastOffset, Committed: -1}
			if c, ok := commits[tp{topic, p.Partition}]; ok && c >= 0 {
				pl.Committed = c
			}
			from := pl.Committed
			if from < pl.First {
				from = pl.First
			}
			pl.Lag = max(pl.End-from, 0)
			out = append(out, pl)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].Partition < out[j].Partition
	})
	return out, nil
}
