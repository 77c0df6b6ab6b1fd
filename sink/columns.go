package sink

import (
	"fmt"
	"github.com/logpipe/logpipe/chclient"
	"strings"

	"github.com/ClickHouse/ch-go/proto"
)

// Batch is the rows of one table waiting for one INSERT, built column by
// column (package tables defines logpipe's). The writer encodes its
// columns straight into the INSERT's Native block (chclient/insert.go).
type Batch interface {
	// Table is the table the batch is inserted into.
	Table() string
	// Columns lists the column names in insert order.
	Columns() []string
	// Input is the columns, encoded by the writer into the INSERT's
	// block (ch-go's proto columns, or columns that encode themselves the
	// same way), in the order of Columns.
	Input() proto.Input
	// Values returns column i's values as clickhouse-go's column-wise
	// append takes them: a slice with one element per row (the driver's
	// insert path, taken when the native one is not available).
	Values(i int) any
	// Len is the number of rows.
	Len() int
	// Bytes is the size of the input the rows were made from.
	Bytes() int
	// Span returns the Kafka topic and partition of the rows and their
	// highest offset; ok is false when the rows come from several
	// partitions or there are none.
	Span() (topic string, partition int32, last int64, ok bool)
	// Reset empties the batch, keeping its memory.
	Reset()
}

// insertQuery is the INSERT statement of a batch, with the explicit column
// list that old servers need.
func insertQuery(b Batch) string {
	return fmt.Sprintf("INSERT INTO %s (%s)", chclient.QuotedIdent(b.Table()), strings.Join(b.Columns(), ", "))
}

// fencedInsertQuery is the INSERT of a batch through its table's fence
// (NAME_in, with the writer's epoch as the last column _epoch; suffix
// LocalSuffix for a server's own part on a cluster).
func fencedInsertQuery(b Batch, suffix string) string {
	names := append(b.Columns(), "_epoch")
	return fmt.Sprintf("INSERT INTO %s (%s)", chclient.QuotedIdent(b.Table()+FenceSuffix+suffix), strings.Join(names, ", "))
}

// FenceSuffix names the entry table through which a data table is
// written under the fence (migration 0019_fences).
const FenceSuffix = "_in"
