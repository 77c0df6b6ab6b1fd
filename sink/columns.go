package sink

import (
	"fmt"
	"github.com/logpipe/logpipe/chclient"
	"reflect"
	"strings"
	"time"
)

// column is one column of a batch under construction: its name and its
// values, appended in place and handed to the driver as one slice.
type column interface {
	name() string
	values() any
	reset()
}

// col is a typed column.
type col[T any] struct {
	n string
	v []T
}

func (c *col[T]) name() string { return c.n }
func (c *col[T]) values() any  { return c.v }
func (c *col[T]) reset()       { clear(c.v); c.v = c.v[:0] }
func (c *col[T]) add(x T)      { c.v = append(c.v, x) }

// newCol creates a column and registers it in cols, in insert order.
func newCol[T any](cols *[]column, name string) *col[T] {
	c := &col[T]{n: name}
	*cols = append(*cols, c)
	return c
}

// Meta is where a row came from in Kafka.
type Meta struct {
	Topic     string
	Partition int32
	Offset    int64
}

// Batch is the rows of one table waiting for one INSERT.
type Batch interface {
	// Table is the table the batch is inserted into.
	Table() string
	// Len is the number of rows.
	Len() int
	// Bytes is the size of the input the rows were made from.
	Bytes() int
	// Reset empties the batch, keeping its memory.
	Reset()

	columns() []column
}

// base is what every batch shares: its table, columns, and counters.
type base struct {
	table string
	cols  []column
	rows  int
	bytes int
}

func (b *base) Table() string      { return b.table }
func (b *base) Len() int           { return b.rows }
func (b *base) Bytes() int         { return b.bytes }
func (b *base) columns() []column  { return b.cols }
func (b *base) added(rawBytes int) { b.rows++; b.bytes += rawBytes }
func (b *base) Reset() {
	for _, c := range b.cols {
		c.reset()
	}
	b.rows, b.bytes = 0, 0
}

// insertQuery is the INSERT statement of a batch, with the explicit column
// list that old servers need.
func insertQuery(b Batch) string {
	names := make([]string, len(b.columns()))
	for i, c := range b.columns() {
		names[i] = c.name()
	}
	return fmt.Sprintf("INSERT INTO %s (%s)", chclient.QuotedIdent(b.Table()), strings.Join(names, ", "))
}

// fencedInsertQuery is the INSERT of a batch through its table's fence
// (NAME_in, with the writer's epoch as the last column _epoch; suffix
// LocalSuffix for a server's own part on a cluster).
func fencedInsertQuery(b Batch, suffix string) string {
	names := make([]string, len(b.columns()), len(b.columns())+1)
	for i, c := range b.columns() {
		names[i] = c.name()
	}
	names = append(names, "_epoch")
	return fmt.Sprintf("INSERT INTO %s (%s)", chclient.QuotedIdent(b.Table()+FenceSuffix+suffix), strings.Join(names, ", "))
}

// FenceSuffix names the entry table through which a data table is
// written under the fence (migration 0019_fences).
const FenceSuffix = "_in"

// Columns lists a batch's column names in insert order (for tests and
// schema checks).
func Columns(b Batch) []string {
	names := make([]string, len(b.columns()))
	for i, c := range b.columns() {
		names[i] = c.name()
	}
	return names
}

func b2u8(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// clampTime keeps a time inside DateTime's range (1970..2105); ClickHouse
// would otherwise wrap it.
func clampTime(t time.Time) time.Time {
	if t.Unix() < 0 {
		return time.Unix(0, 0).UTC()
	}
	if t.Unix() > 4294967295 {
		return time.Unix(4294967295, 0).UTC()
	}
	return t
}

func epochMs(t time.Time) uint64 {
	if t.Unix() < 0 {
		return 0
	}
	return uint64(t.UnixMilli())
}

// Value is one column of one row.
type Value struct {
	Column string
	Value  any
}

// Row returns row i of b, column by column in insert order, with the
// values as the INSERT sends them (logpipe check -json shows them).
func Row(b Batch, i int) []Value {
	cols := b.columns()
	row := make([]Value, 0, len(cols))
	for _, c := range cols {
		v := reflect.ValueOf(c.values())
		if i < 0 || i >= v.Len() {
			continue
		}
		row = append(row, Value{Column: c.name(), Value: v.Index(i).Interface()})
	}
	return row
}
