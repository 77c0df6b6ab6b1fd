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
	"encoding/binary"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/ClickHouse/ch-go/proto"
)

// Meta is where a row came from in Kafka.
type Meta struct {
	Topic     string
	Partition int32
	Offset    int64
}

// Column is one column of a table: its name and the values appended to
// it so far. As a proto.ColInput it encodes them in ClickHouse's Native
// form (ch-go's column encoders, or the same layout written directly from
// the Go buffers), which is what the sink sends; its Type is the type the
// migrations declare (the legacy rendering; see Table.Types for the
// modern one).
type Column interface {
	proto.ColInput
	Name() string
	// Values is the column's values as clickhouse-go's column-wise append
	// takes them (a slice with one element per row), for the driver's
	// insert path and for checks.
	Values() any
	reset()
}

// col is a column of strings or numbers kept as a Go slice.
type col[T string | uint8 | uint16 | uint32 | uint64 | int32 | int64 | float64] struct {
	n, t string
	v    []T
}

func (c *col[T]) Name() string                { return c.n }
func (c *col[T]) Type() proto.ColumnType      { return proto.ColumnType(c.t) }
func (c *col[T]) Rows() int                   { return len(c.v) }
func (c *col[T]) Values() any                 { return c.v }
func (c *col[T]) reset()                      { clear(c.v); c.v = c.v[:0] }
func (c *col[T]) add(x T)                     { c.v = append(c.v, x) }
func (c *col[T]) WriteColumn(w *proto.Writer) { w.ChainBuffer(c.EncodeColumn) }

func (c *col[T]) EncodeColumn(b *proto.Buffer) {
	switch v := any(c.v).(type) {
	case []string:
		for _, s := range v {
			b.PutString(s)
		}
	case []uint8:
		proto.ColUInt8(v).EncodeColumn(b)
	case []uint16:
		proto.ColUInt16(v).EncodeColumn(b)
	case []uint32:
		proto.ColUInt32(v).EncodeColumn(b)
	case []uint64:
		proto.ColUInt64(v).EncodeColumn(b)
	case []int32:
		proto.ColInt32(v).EncodeColumn(b)
	case []int64:
		proto.ColInt64(v).EncodeColumn(b)
	case []float64:
		proto.ColFloat64(v).EncodeColumn(b)
	}
}

// newCol creates a column and registers it in cols, in insert order.
func newCol[T string | uint8 | uint16 | uint32 | uint64 | int32 | int64 | float64](cols *[]Column, name, typ string) *col[T] {
	c := &col[T]{n: name, t: typ}
	*cols = append(*cols, c)
	return c
}

// timeCol is a DateTime column, sent as the server's table has it:
// DateTime (seconds) on 18.16, DateTime64(3, 'UTC') (milliseconds) in the
// modern rendering. Infer, given the type the server announces for the
// column, picks the encoding.
type timeCol struct {
	n     string
	t     string // type to send, "DateTime" until Infer
	scale int64  // 0: seconds (DateTime); else units per second (DateTime64)
	v     []time.Time
}

func newTime(cols *[]Column, name string) *timeCol {
	c := &timeCol{n: name, t: "DateTime"}
	*cols = append(*cols, c)
	return c
}

func (c *timeCol) Name() string                { return c.n }
func (c *timeCol) Type() proto.ColumnType      { return proto.ColumnType(c.t) }
func (c *timeCol) Rows() int                   { return len(c.v) }
func (c *timeCol) Values() any                 { return c.v }
func (c *timeCol) reset()                      { clear(c.v); c.v = c.v[:0] }
func (c *timeCol) add(t time.Time)             { c.v = append(c.v, t) }
func (c *timeCol) WriteColumn(w *proto.Writer) { w.ChainBuffer(c.EncodeColumn) }

// Infer makes the column encode its values as type t: DateTime or
// DateTime64(P) with any time zone.
func (c *timeCol) Infer(t proto.ColumnType) error {
	s := string(t)
	switch {
	case s == "DateTime" || strings.HasPrefix(s, "DateTime("):
		c.t, c.scale = s, 0
		return nil
	case strings.HasPrefix(s, "DateTime64("):
		p := strings.TrimPrefix(s, "DateTime64(")
		if len(p) < 2 || p[0] < '0' || p[0] > '9' || (p[1] != ')' && p[1] != ',') {
			break
		}
		c.t, c.scale = s, 1
		for range p[0] - '0' {
			c.scale *= 10
		}
		return nil
	}
	return fmt.Errorf("column %s holds times, not %s", c.n, s)
}

func (c *timeCol) EncodeColumn(b *proto.Buffer) {
	if c.scale == 0 {
		for _, t := range c.v {
			b.Buf = binary.LittleEndian.AppendUint32(b.Buf, uint32(t.Unix()))
		}
		return
	}
	for _, t := range c.v {
		// Whole seconds times the scale plus the fraction: no overflow
		// for any DateTime64 precision in its range.
		v := t.Unix()*c.scale + int64(t.Nanosecond())/(1_000_000_000/c.scale)
		b.Buf = binary.LittleEndian.AppendUint64(b.Buf, uint64(v))
	}
}

// maxDict bounds a LowCardinality column's dictionary kept across
// batches; past it, the dictionary starts again with the next batch.
const maxDict = 1 << 14

// lowCard is a LowCardinality(String) column. It keeps a dictionary of
// the distinct values it has seen across batches (copied, so that they do
// not hold the records they came from) and, per batch, the keys of its
// rows into the batch's own dictionary (the entries the batch uses, in
// the order it first used them), which is what the Native encoding of
// LowCardinality is: appending a value costs one map lookup and allocates
// nothing once the value is known, and encoding writes each distinct
// value once.
type lowCard struct {
	n    string
	dict map[string]int32
	strs []string // dictionary entries, by global id
	slot []int32  // global id -> 1 + its index in the batch's dictionary, 0 = unused so far
	used []int32  // the batch's dictionary: global ids in first-use order
	keys []uint32 // one per row: index in the batch's dictionary
	last int32    // global id of the previous value, -1 = none
}

func newLowCard(cols *[]Column, name string) *lowCard {
	c := &lowCard{n: name, dict: map[string]int32{}, last: -1}
	*cols = append(*cols, c)
	return c
}

func (c *lowCard) Name() string                { return c.n }
func (c *lowCard) Type() proto.ColumnType      { return "LowCardinality(String)" }
func (c *lowCard) Rows() int                   { return len(c.keys) }
func (c *lowCard) WriteColumn(w *proto.Writer) { w.ChainBuffer(c.EncodeColumn) }

func (c *lowCard) Values() any {
	out := make([]string, len(c.keys))
	for i, k := range c.keys {
		out[i] = c.strs[c.used[k]]
	}
	return out
}

func (c *lowCard) reset() {
	for _, g := range c.used {
		c.slot[g] = 0
	}
	c.used = c.used[:0]
	c.keys = c.keys[:0]
	if len(c.strs) > maxDict {
		clear(c.dict)
		clear(c.strs)
		c.strs = c.strs[:0]
		c.slot = c.slot[:0]
		c.last = -1
	}
}

func (c *lowCard) add(s string) {
	// Many columns repeat the previous row's value (a vendor, a topic, a
	// scheme): compared, it costs less than a lookup.
	if c.last >= 0 && c.slot[c.last] != 0 && c.strs[c.last] == s {
		c.keys = append(c.keys, uint32(c.slot[c.last]-1))
		return
	}
	g, ok := c.dict[s]
	if !ok {
		s = strings.Clone(s)
		g = int32(len(c.strs))
		c.strs = append(c.strs, s)
		c.slot = append(c.slot, 0)
		c.dict[s] = g
	}
	k := c.slot[g]
	if k == 0 {
		c.used = append(c.used, g)
		k = int32(len(c.used))
		c.slot[g] = k
	}
	c.keys = append(c.keys, uint32(k-1))
	c.last = g
}

// The Native encoding of LowCardinality (ClickHouse's
// SerializationLowCardinality, as ch-go's ColLowCardinality writes it): a
// key-serialization version before the data, then per block the flags and
// key width, the block's dictionary, and the keys.
const (
	lcSharedDictionariesWithAdditionalKeys = 1
	lcHasAdditionalKeys                    = 1 << 9
	lcNeedUpdateDictionary                 = 1 << 10
)

// EncodeState implements proto.StateEncoder.
func (c *lowCard) EncodeState(b *proto.Buffer) {
	b.PutInt64(lcSharedDictionariesWithAdditionalKeys)
}

func (c *lowCard) EncodeColumn(b *proto.Buffer) {
	if len(c.keys) == 0 {
		return
	}
	var width int64 // 0: UInt8, 1: UInt16, 2: UInt32
	switch n := len(c.used); {
	case n > 1<<16:
		width = 2
	case n > 1<<8:
		width = 1
	}
	b.PutInt64(lcHasAdditionalKeys | lcNeedUpdateDictionary | width)
	b.PutInt64(int64(len(c.used)))
	for _, g := range c.used {
		b.PutString(c.strs[g])
	}
	b.PutInt64(int64(len(c.keys)))
	switch width {
	case 0:
		for _, k := range c.keys {
			b.Buf = append(b.Buf, uint8(k))
		}
	case 1:
		for _, k := range c.keys {
			b.Buf = binary.LittleEndian.AppendUint16(b.Buf, uint16(k))
		}
	default:
		for _, k := range c.keys {
			b.Buf = binary.LittleEndian.AppendUint32(b.Buf, k)
		}
	}
}

// nullInt32 is a Nullable(Int32) column: the null map and the values (0
// where null), as Native encodes them.
type nullInt32 struct {
	n     string
	nulls []uint8
	v     []int32
}

func newNullInt32(cols *[]Column, name string) *nullInt32 {
	c := &nullInt32{n: name}
	*cols = append(*cols, c)
	return c
}

func (c *nullInt32) Name() string                { return c.n }
func (c *nullInt32) Type() proto.ColumnType      { return "Nullable(Int32)" }
func (c *nullInt32) Rows() int                   { return len(c.v) }
func (c *nullInt32) reset()                      { c.nulls, c.v = c.nulls[:0], c.v[:0] }
func (c *nullInt32) WriteColumn(w *proto.Writer) { w.ChainBuffer(c.EncodeColumn) }

func (c *nullInt32) EncodeColumn(b *proto.Buffer) {
	proto.ColUInt8(c.nulls).EncodeColumn(b)
	proto.ColInt32(c.v).EncodeColumn(b)
}

func (c *nullInt32) Values() any {
	out := make([]*int32, len(c.v))
	for i := range c.v {
		if c.nulls[i] == 0 {
			out[i] = &c.v[i]
		}
	}
	return out
}

func (c *nullInt32) add(x int32, set bool) {
	if !set {
		c.nulls, c.v = append(c.nulls, 1), append(c.v, 0)
		return
	}
	c.nulls, c.v = append(c.nulls, 0), append(c.v, x)
}

// array is an Array(String) or Array(Float64) column: every row's
// elements in one slice and the end offset of each row, as Native
// encodes them.
type array[T string | float64] struct {
	n, t string
	data []T
	ends []uint64
}

func newArray[T string | float64](cols *[]Column, name, typ string) *array[T] {
	c := &array[T]{n: name, t: typ}
	*cols = append(*cols, c)
	return c
}

func (c *array[T]) Name() string                { return c.n }
func (c *array[T]) Type() proto.ColumnType      { return proto.ColumnType(c.t) }
func (c *array[T]) Rows() int                   { return len(c.ends) }
func (c *array[T]) WriteColumn(w *proto.Writer) { w.ChainBuffer(c.EncodeColumn) }
func (c *array[T]) reset()                      { clear(c.data); c.data, c.ends = c.data[:0], c.ends[:0] }

func (c *array[T]) add(x []T) {
	c.data = append(c.data, x...)
	c.ends = append(c.ends, uint64(len(c.data)))
}

func (c *array[T]) EncodeColumn(b *proto.Buffer) {
	proto.ColUInt64(c.ends).EncodeColumn(b)
	switch v := any(c.data).(type) {
	case []string:
		for _, s := range v {
			b.PutString(s)
		}
	case []float64:
		proto.ColFloat64(v).EncodeColumn(b)
	}
}

func (c *array[T]) Values() any {
	out := make([][]T, len(c.ends))
	var start uint64
	for i, end := range c.ends {
		out[i] = c.data[start:end:end]
		if out[i] == nil {
			out[i] = []T{} // an empty array, as the driver and JSON show it
		}
		start = end
	}
	return out
}

// base is what every table shares: its name, columns, and counters.
type base struct {
	table string
	cols  []Column
	input proto.Input
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

// Input is the columns as ch-go's proto.Input, in insert order: what the
// sink encodes into the INSERT's block. It is the same every time (the
// columns themselves, not a copy).
func (b *base) Input() proto.Input {
	if len(b.input) != len(b.cols) {
		b.input = make(proto.Input, len(b.cols))
		for i, c := range b.cols {
			b.input[i] = proto.InputColumn{Name: c.Name(), Data: c}
		}
	}
	return b.input
}

// Types lists the column types in insert order, as the migrations declare
// them; modern renders the event time as the modern schema does
// (DateTime64(3, 'UTC'), see schemas.Target.Render).
func (b *base) Types(modern bool) []string {
	types := make([]string, len(b.cols))
	for i, c := range b.cols {
		types[i] = string(c.Type())
		if _, ok := c.(*timeCol); ok {
			types[i] = "DateTime"
		}
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

// Batch is what every table type has: its name, rows, and columns (as
// names, as ch-go proto.Input the sink encodes, and as values).
type Batch interface {
	Table() string
	Len() int
	Columns() []string
	Input() proto.Input
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
