package checkpoint

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/logpipe/logpipe/chclient"
)

// WaitInserts waits until no INSERT of topic/partition from any logpipe
// process is running on the server (on a cluster: on any server, the
// shards' parts of a Distributed insert included), so that the watermarks
// read next are final. After timeout it kills such inserts and waits for
// them to end.
func (s *Store) WaitInserts(ctx context.Context, topic string, partition int32, timeout time.Duration) error {
	like := chclient.String(strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(insertIDPrefix(topic, partition)) + "%")
	where := fmt.Sprintf(sqlRunningWhere, like)
	deadline := time.Now().Add(timeout)
	killed := false
	for {
		var running uint64
		check := func(ctx context.Context, c *chclient.Conn) error {
			n, err := chclient.Value[uint64](ctx, c, fmt.Sprintf(sqlRunning, where))
			if err != nil {
				return err
			}
			running += n
			if n > 0 && killed {
				return nil
			}
			if n > 0 && time.Now().After(deadline) {
				kctx, cancel := context.WithTimeout(ctx, timeout)
				defer cancel()
				if err := c.KillQuery(kctx, where); err != nil {
					return fmt.Errorf("kill stale inserts: %w", err)
				}
			}
			return nil
		}
		if err := s.conn.EachServer(ctx, check); err != nil {
			return fmt.Errorf("check running inserts of %s/%d: %w", topic, partition, err)
		}
		if running == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			killed = true
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
