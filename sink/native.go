package sink

import (
	"fmt"

	"github.com/ClickHouse/ch-go/proto"
	"github.com/logpipe/logpipe/chclient"
)

// EncodeNative encodes a batch in ClickHouse's Native format, given each
// column's type as the target table declares it (types[i] for the batch's
// i-th column, see Batch.Columns). The values go through the same column
// encoders as the writer's INSERT blocks, so a batch that encodes here and
// loads with INSERT INTO t (Columns) FORMAT Native is one the table
// accepts over the native protocol. It lets tests load batches into an
// engine without a native-protocol server (the embedded modern ClickHouse).
func EncodeNative(b Batch, types []string) ([]byte, error) {
	input := b.Input()
	if len(types) != len(input) {
		return nil, fmt.Errorf("encode %s: %d column types for %d columns", b.Table(), len(types), len(input))
	}
	for i, c := range input {
		if err := chclient.Conform(c, proto.ColumnType(types[i])); err != nil {
			return nil, fmt.Errorf("encode %s: %w", b.Table(), err)
		}
	}
	var buf proto.Buffer
	if err := (proto.Block{Columns: len(input), Rows: b.Len()}).EncodeRawBlock(&buf, 0, input); err != nil {
		return nil, fmt.Errorf("encode %s: %w", b.Table(), err)
	}
	return buf.Buf, nil
}
