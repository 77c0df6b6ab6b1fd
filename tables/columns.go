// Package tables defines the ClickHouse tables the pipeline writes rows
// into, each once: a table type owns its columns (name, ClickHouse type,
// and a typed Go buffer, in insert order) and turns a parsed record into
// one row of them. The buffers are kept across batches (Reset empties them
// and keeps their memory), so appending a record allocates nothing once a
// batch has reached its usual size.
//
// A batch is handed to sink as a sink.Batch: its table, its column list,
// and each column's values in the form the driver's column-wise append
// takes. tables imports transform and nothing of ClickHouse's or Kafka's;
// sink imports neither transform nor tables.
package tables

import (
	"reflect"
	"strings"
	"time"
)

// Meta is where a row came from in Kafka.
type Meta struct {
	Topic     string
	Partition int32
	Offset    int64
}

// Column is one column of a table: its name, its type as the migrations
// declare it (the legacy rendering; see Table.Types for the modern one),
// and the values appended to it so far.
type Column interface {
	Name() string
	Type() string
	// Values is the column's values as the driver's column-wise append
	// takes them (a slice with one element per row).
	Values() any
	reset()
}

// col is a typed column whose values are handed to the driver as they are.
type col[T any] struct {
	n, t string
	v    []T
}

func (c *col[T]) Name() string { return c.n }
func (c *col[T]) Type() string { return c.t }
func (c *col[T]) Values() any  { return c.v }
func (c *col[T]) reset()       { clear(c.v); c.v = c.v[:0] }
func (c *col[T]) add(x T)      { c.v = append(c.v, x) }

// newCol creates a column and registers it in cols, in insert order.
func newCol[T any](cols *[]Column, name, typ string) *col[T] {
	c := &col[T]{n: name, t: typ}
	*cols = append(*cols, c)
	return c
}

// maxDict bounds a LowCardinality column's dictionary kept across
// batches; past it, the dictionary starts again with the next batch.
const maxDict = 1 << 14

// lowCard is a LowCardinality(String) column. The driver's
// LowCardinality encoder takes values as interfaces and hashes each one;
// a string turned into an interface is a heap allocation per value. The
// column instead keeps a dictionary of the distinct values it has seen
// (copied, so that they do not hold the records they came from), each
// converted to an interface once, and hands the driver a slice of those:
// appending a value that is already in the dictionary allocates nothing.
type lowCard struct {
	n    string
	dict map[string]int32
	vals []any // dictionary entries, as interfaces
	v    []any // one entry per row
}

func newLowCard(cols *[]Column, name string) *lowCard {
	c := &lowCard{n: name, dict: map[string]int32{}}
	*cols = append(*cols, c)
	return c
}

func (c *lowCard) Name() string { return c.n }
func (c *lowCard) Type() string { return "LowCardinality(String)" }
func (c *lowCard) Values() any  { return c.v }

func (c *lowCard) reset() {
	clear(c.v)
	c.v = c.v[:0]
	if len(c.vals) > maxDict {
		clear(c.dict)
		clear(c.vals)
		c.vals = c.vals[:0]
	}
}

func (c *lowCard) add(s string) {
	i, ok := c.dict[s]
	if !ok {
		s = strings.Clone(s)
		i = int32(len(c.vals))
		c.vals = append(c.vals, s)
		c.dict[s] = i
	}
	c.v = append(c.v, c.vals[i])
}

// strings returns the column's values as strings (for checks).
func (c *lowCard) strings() []string {
	out := make([]string, len(c.v))
	for i, v := range c.v {
		out[i] = v.(string)
	}
	return out
}

// nullInt32 is a Nullable(Int32) column. The values live in one backing
// slice the row pointers point into, so a row does not allocate its own.
type nullInt32 struct {
	n     string
	store []int32
	v     []*int32
}

func newNullInt32(cols *[]Column, name string) *nullInt32 {
	c := &nullInt32{n: name}
	*cols = append(*cols, c)
	return c
}

func (c *nullInt32) Name() string { return c.n }
func (c *nullInt32) Type() string { return "Nullable(Int32)" }
func (c *nullInt32) Values() any  { return c.v }
func (c *nullInt32) reset()       { clear(c.v); c.v = c.v[:0]; c.store = c.store[:0] }

func (c *nullInt32) add(x int32, set bool) {
	if !set {
		c.v = append(c.v, nil)
		return
	}
	if len(c.store) == cap(c.store) {
		// A new backing array: the rows already added keep pointing
		// into the old one, which holds their values.
		c.store = make([]int32, 0, max(64, 2*cap(c.store)))
	}
	c.store = append(c.store, x)
	c.v = append(c.v, &c.store[len(c.store)-1])
}

// array is an Array(T) column. The elements of every row live in one
// backing slice, each row a sub-slice of it, so a row does not allocate
// its own.
type array[T any] struct {
	n, t  string
	store []T
	v     [][]T
}

func newArray[T any](cols *[]Column, name, typ string) *array[T] {
	c := &array[T]{n: name, t: typ}
	*cols = append(*cols, c)
	return c
}

func (c *array[T]) Name() string { return c.n }
func (c *array[T]) Type() string { return c.t }
func (c *array[T]) Values() any  { return c.v }

func (c *array[T]) reset() {
	clear(c.v)
	c.v = c.v[:0]
	clear(c.store)
	c.store = c.store[:0]
}

func (c *array[T]) add(x []T) {
	if c.store == nil || len(c.store)+len(x) > cap(c.store) {
		// A new backing array: the rows already added keep pointing
		// into the old one.
		c.store = make([]T, 0, max(256, 2*cap(c.store), len(x)))
	}
	start := len(c.store)
	c.store = append(c.store, x...)
	c.v = append(c.v, c.store[start:len(c.store):len(c.store)])
}

// base is what every table shares: its name, columns, and counters.
type base struct {
	table string
	cols  []Column
	rows  int
	bytes int
	// span of the rows: their topic and partition (mixed when they are
	// not all the same) and their highest offset.
	topic     string
	partition int32
	last      int64
	mixed     bool
}

// Table is the table the batch is inserted into.
func (b *base) Table() string { return b.table }

// Len is the number of rows.
func (b *base) Len() int { return b.rows }

// Bytes is the size of the input the rows were made from.
func (b *base) Bytes() int { return b.bytes }

// Columns lists the column names in insert order.
func (b *base) Columns() []string {
	names := make([]string, len(b.cols))
	for i, c := range b.cols {
		names[i] = c.Name()
	}
	return names
}

// Types lists the column types in insert order, as the migrations declare
// them; modern renders the event time as the modern schema does
// (DateTime64(3, 'UTC'), see schemas.Target.Render).
func (b *base) Types(modern bool) []string {
	types := make([]string, len(b.cols))
	for i, c := range b.cols {
		types[i] = c.Type()
		if modern && c.Name() == "time" {
			types[i] = "DateTime64(3, 'UTC')"
		}
	}
	return types
}

// Values returns column i's values (see Column.Values).
func (b *base) Values(i int) any { return b.cols[i].Values() }

// Span returns the Kafka topic and partition of the rows and their highest
// offset; ok is false when the rows come from several partitions or there
// are none.
func (b *base) Span() (topic string, partition int32, last int64, ok bool) {
	if b.rows == 0 || b.mixed {
		return "", 0, 0, false
	}
	return b.topic, b.partition, b.last, true
}

// Reset empties the batch, keeping its memory.
func (b *base) Reset() {
	for _, c := range b.cols {
		c.reset()
	}
	b.rows, b.bytes = 0, 0
	b.topic, b.partition, b.last, b.mixed = "", 0, 0, false
}

func (b *base) added(m Meta, rawBytes int) {
	if b.rows == 0 {
		b.topic, b.partition, b.last = m.Topic, m.Partition, m.Offset
	} else if m.Topic != b.topic || m.Partition != b.partition {
		b.mixed = true
	}
	b.last = max(b.last, m.Offset)
	b.rows++
	b.bytes += rawBytes
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

// Batch is what every table type has (for Row and tests).
type Batch interface {
	Table() string
	Len() int
	Columns() []string
	Values(i int) any
}

// Row returns row i of b, column by column in insert order, with the
// values as the INSERT sends them (logpipe check -json shows them).
func Row(b Batch, i int) []Value {
	names := b.Columns()
	row := make([]Value, 0, len(names))
	for c, name := range names {
		v := reflect.ValueOf(b.Values(c))
		if i < 0 || i >= v.Len() {
			continue
		}
		x := v.Index(i).Interface()
		row = append(row, Value{Column: name, Value: x})
	}
	return row
}
