package checkpoint

import (
	"context"
	"fmt"
	"testing"

	"github.com/logpipe/logpipe/chclient"
	"github.com/logpipe/logpipe/internal/chdbtest"
	"github.com/logpipe/logpipe/schemas"
)

// TestSQLOnModern runs the checkpoint's SQL (sql.go) on the embedded
// modern engine (26.x) against the migrated tables: the same statements
// the store sends to 18.16 in the other tests, and the answers they give.
func TestSQLOnModern(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the embedded engine")
	}
	if err := chdbtest.Available(); err != nil {
		t.Skip(err)
	}
	e := chdbtest.Open(t)
	if _, err := schemas.MigrateTarget(context.Background(), e.DB(), schemas.Target{}); err != nil {
		t.Fatal(err)
	}
	topic := chclient.String("it's")
	e.MustExec(t, fmt.Sprintf(sqlWriteFence, fencesTable, topic, 2, uint64(5)<<32|9))
	e.MustExec(t, fmt.Sprintf(sqlWriteFence, fencesTable, topic, 2, uint64(4)<<32))
	e.MustExec(t, "INSERT INTO ingest_watermarks (target, _topic, _partition, max_offset) SELECT 'cdn_requests', 'it''s', toInt32(2), maxState(toInt64(n)) FROM (SELECT arrayJoin([3, 17, 5]) AS n)")
	like := chclient.String(insertIDPrefix("it's", 2) + "%")
	for _, tc := range []struct{ sql, want string }{
		{fmt.Sprintf(sqlFence, fencesTable, topic, 2), fmt.Sprint(uint64(5)<<32 | 9)},
		{fmt.Sprintf(sqlFence, fencesTable, topic, 3), "0"},
		{fmt.Sprintf(sqlWatermarks, watermarksTable, topic, 2), "cdn_requests\t17"},
		{fmt.Sprintf(sqlRunning, fmt.Sprintf(sqlRunningWhere, like)), "0"},
		{fmt.Sprintf(sqlReplica, chclient.String(watermarksTable)), ""},
	} {
		rows, err := e.Query(tc.sql)
		if err != nil {
			t.Errorf("%s: %v", tc.sql, err)
			continue
		}
		got := ""
		for i, r := range rows {
			if i > 0 {
				got += "\n"
			}
			for j, v := range r {
				if j > 0 {
					got += "\t"
				}
				got += v
			}
		}
		if got != tc.want {
			t.Errorf("%s = %q, want %q", tc.sql, got, tc.want)
		}
	}
}
