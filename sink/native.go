package sink

import (
	"fmt"
	"time"

	chproto "github.com/ClickHouse/ch-go/proto"
	chcolumn "github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"
)

// EncodeNative encodes a batch in ClickHouse's Native format, given each
// column's type as the target table declares it (types[i] for the batch's
// i-th column, see Batch.Columns). The values go through the driver's own column
// encoders, as in an INSERT, so a batch that encodes here and loads with
// INSERT INTO t (Columns) FORMAT Native is one the table accepts over the
// native protocol. It lets tests load batches into an engine without a
// native-protocol server (the embedded modern ClickHouse).
func EncodeNative(b Batch, types []string) ([]byte, error) {
	cols := b.Columns()
	if len(types) != len(cols) {
		return nil, fmt.Errorf("encode %s: %d column types for %d columns", b.Table(), len(types), len(cols))
	}
	block := proto.NewBlock()
	block.ServerContext.Timezone = time.UTC
	for i, name := range cols {
		if err := block.AddColumn(name, chcolumn.Type(types[i])); err != nil {
			return nil, fmt.Errorf("encode %s: column %s %s: %w", b.Table(), name, types[i], err)
		}
		if _, err := block.Columns[i].Append(b.Values(i)); err != nil {
			return nil, fmt.Errorf("encode %s: column %s %s: %w", b.Table(), name, types[i], err)
		}
	}
	var buf chproto.Buffer
	if err := block.Encode(&buf, 0); err != nil {
		return nil, fmt.Errorf("encode %s: %w", b.Table(), err)
	}
	return buf.Buf, nil
}
