package chclient

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/ClickHouse/ch-go/compress"
	"github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2"
)

// The INSERT path: the batch's typed columns are encoded straight into
// the INSERT's Native block over ClickHouse's native protocol, on
// connections of its own (dialled, deadlined and failed over like the
// driver's, see dial.go). clickhouse-go's batch would copy every value
// into columns of its own, new for each batch, and encode LowCardinality
// columns through interfaces, one allocation and hash per value; it
// stays for everything else, and for inserts when a server does not speak
// this path (insertConn.native).
//
// ch-go's client, which this path is built from the parts of (its proto
// encoders and compression), cannot talk to ClickHouse 18.16: it writes
// a query's client info only from protocol revision 54420 on, where
// ClickHouse reads it from 54032, so 18.16 (54412) takes it for settings
// and refuses the query. The path below speaks revision 54412 to every
// server: the oldest supported server's, which newer servers keep
// accepting from older clients, so one dialect serves them all.
const nativeRevision = 54412

// clientName is how the INSERT connections introduce themselves
// (system.query_log's client_name).
const clientName = "logpipe"

// protocolError is a server answer the INSERT path does not understand.
// The connection is closed, and the Conn's inserts go through
// clickhouse-go from then on.
type protocolError struct {
	msg string
	// before: nothing of the INSERT's data was sent (the attempt may go
	// through clickhouse-go at once); keep: the Conn keeps the path (a
	// server that refused the handshake: the driver gets the same answer,
	// or the next connection is accepted).
	before, keep bool
}

func (e *protocolError) Error() string { return "native insert: " + e.msg }

func protoErrorf(format string, args ...any) error {
	return &protocolError{msg: fmt.Sprintf(format, args...), before: true}
}

// protocolCodes are the server errors that say it did not understand what
// the path sent (rather than refusing the rows): the path is switched
// off for the Conn, as for an answer it does not understand.
var protocolCodes = map[int32]bool{
	32:  true, // ATTEMPT_TO_READ_AFTER_EOF
	33:  true, // CANNOT_READ_ALL_DATA
	40:  true, // CHECKSUM_DOESNT_MATCH
	115: true, // UNKNOWN_SETTING (how 18.16 answers ch-go's query packet)
	117: true, // INCORRECT_DATA
	271: true, // CANNOT_DECOMPRESS
}

// misunderstood turns a server error of protocolCodes into a
// protocolError (its text only: a retry is decided as for a connection
// that broke, and goes through clickhouse-go).
func misunderstood(err error, before bool) error {
	var ex *clickhouse.Exception
	if errors.As(err, &ex) && protocolCodes[ex.Code] {
		return &protocolError{msg: "server did not understand: " + ex.Error(), before: before}
	}
	return err
}

// ErrNativeOff: the path is off for this Conn (see protocolError); the
// INSERT goes through clickhouse-go. Nothing was sent.
var ErrNativeOff = errors.New("native insert path off")

// ErrTypes: the server's table has a column of a type the batch cannot
// encode itself as; the INSERT was abandoned before any data was sent,
// and goes through clickhouse-go, which converts.
var ErrTypes = errors.New("column types differ")

// nativeConn is one connection of the INSERT path.
type nativeConn struct {
	conn net.Conn
	addr string
	r    *proto.Reader
	buf  proto.Buffer // packets to send
	body proto.Buffer // the block being encoded, before compression
	comp *compress.Writer
	sent bool // the current INSERT's data has started to go out
}

// insertPool holds a Conn's INSERT connections.
type insertPool struct {
	d    *dialer
	o    Options
	sem  chan struct{} // one per INSERT under way, at most MaxOpenConns
	mu   sync.Mutex
	idle []*nativeConn
	off  error // set once a server answered what the path does not understand
}

func newInsertPool(d *dialer, o Options) *insertPool {
	return &insertPool{d: d, o: o, sem: make(chan struct{}, o.MaxOpenConns)}
}

// disabled returns why the path is off for this Conn (nil: it is on).
func (p *insertPool) disabled() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.off
}

func (p *insertPool) disable(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.off == nil {
		p.off = err
	}
}

func (p *insertPool) close() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, c := range idle {
		c.conn.Close()
	}
}

// get returns an idle connection that is still open, or a new one.
func (p *insertPool) get(ctx context.Context) (*nativeConn, error) {
	for {
		p.mu.Lock()
		n := len(p.idle)
		var c *nativeConn
		if n > 0 {
			c = p.idle[n-1]
			p.idle = p.idle[:n-1]
		}
		p.mu.Unlock()
		if c == nil {
			return p.dial(ctx)
		}
		if alive(c.conn) {
			return c, nil
		}
		c.conn.Close()
	}
}

func (p *insertPool) put(c *nativeConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.idle) < cap(p.sem) {
		p.idle = append(p.idle, c)
		return
	}
	c.conn.Close()
}

// dial connects to the first address that completes the handshake, each
// given its share of the dial timeout, the ones that failed lately last
// (as dialer.strategy does for the driver's pool).
func (p *insertPool) dial(ctx context.Context) (*nativeConn, error) {
	addrs := p.d.order(p.o.Addr)
	var errs []error
	for i, addr := range addrs {
		share := p.o.DialTimeout
		if deadline, ok := ctx.Deadline(); ok {
			share = min(share, time.Until(deadline)/time.Duration(len(addrs)-i))
		}
		actx, cancel := context.WithTimeout(ctx, share)
		c, err := p.handshake(actx, addr)
		cancel()
		if err == nil {
			return c, nil
		}
		var pe *protocolError
		if errors.As(err, &pe) {
			return nil, err
		}
		p.d.markFailed(addr)
		errs = append(errs, fmt.Errorf("%s: %w", addr, err))
		if ctx.Err() != nil {
			break
		}
	}
	if len(errs) == 0 {
		return nil, errors.New("no address to connect to")
	}
	return nil, errors.Join(errs...)
}

func (p *insertPool) handshake(ctx context.Context, addr string) (_ *nativeConn, err error) {
	conn, err := p.d.dialContext(ctx, addr)
	if err != nil {
		return nil, err
	}
	c := &nativeConn{conn: conn, addr: addr, r: proto.NewReader(conn), comp: compress.NewWriter(compress.LevelZero, compress.LZ4)}
	defer func() {
		if err != nil {
			conn.Close()
		}
	}()
	stop := deadline(ctx, conn, p.o.ReadTimeout)
	defer stop()
	proto.ClientHello{Name: clientName, Major: 1, ProtocolVersion: nativeRevision,
		Database: p.o.Database, User: user(p.o.User), Password: p.o.Password}.Encode(&c.buf)
	if err := c.flush(); err != nil {
		return nil, err
	}
	code, err := c.r.UVarInt()
	if err != nil {
		return nil, err
	}
	switch proto.ServerCode(code) {
	case proto.ServerCodeHello:
		var hello proto.ServerHello
		if err := hello.DecodeAware(c.r, nativeRevision); err != nil {
			return nil, err
		}
		if hello.Revision < nativeRevision {
			return nil, protoErrorf("server %s speaks protocol revision %d, older than %d", addr, hello.Revision, nativeRevision)
		}
		return c, nil
	case proto.ServerCodeException:
		return nil, &protocolError{msg: fmt.Sprintf("handshake with %s: %v", addr, c.exception()), before: true, keep: true}
	}
	return nil, protoErrorf("handshake: unexpected packet %d from %s", code, addr)
}

func user(u string) string {
	if u == "" {
		return "default"
	}
	return u
}

// deadline bounds every read and write on conn by ctx's deadline (else
// by fallback), and closes conn when ctx ends first; stop undoes both.
func deadline(ctx context.Context, conn net.Conn, fallback time.Duration) (stop func()) {
	if d, ok := ctx.Deadline(); ok {
		conn.SetDeadline(d)
	} else if fallback > 0 {
		conn.SetDeadline(time.Now().Add(fallback))
	}
	after := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	return func() {
		after()
		conn.SetDeadline(time.Time{})
	}
}

func (c *nativeConn) flush() error {
	_, err := c.conn.Write(c.buf.Buf)
	c.buf.Reset()
	return err
}

// InsertInput runs query, an INSERT with its column list ("INSERT INTO t
// (a, b) VALUES"), sending input's columns as its one block of rows over
// the native INSERT path, under query id queryID (none if empty). It
// fails with an error wrapping ErrNativeOff or ErrTypes, having sent
// nothing, when the path cannot take this INSERT: the caller then sends
// it through PrepareBatch.
func (c *Conn) InsertInput(ctx context.Context, query, queryID string, input proto.Input, rows int) error {
	if c.ins == nil {
		return ErrNativeOff
	}
	return c.ins.insert(ctx, query, queryID, input, rows)
}

// insert runs query, an INSERT with its column list, sending input as
// its one block of rows. A failure that leaves the connection unusable
// closes it.
func (p *insertPool) insert(ctx context.Context, query, queryID string, input proto.Input, rows int) error {
	if err := p.disabled(); err != nil {
		return fmt.Errorf("%w: %w", ErrNativeOff, err)
	}
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-p.sem }()
	c, err := p.get(ctx)
	if err != nil {
		var pe *protocolError
		if errors.As(err, &pe) {
			if !pe.keep {
				p.disable(err)
			}
			return fmt.Errorf("%w: %w", ErrNativeOff, err)
		}
		return err
	}
	stop := deadline(ctx, c.conn, p.o.ReadTimeout)
	err = c.insert(query, queryID, input, rows)
	stop()
	c.buf.Reset()
	c.trim()
	var ex *clickhouse.Exception
	var pe *protocolError
	switch {
	case errors.As(err, &pe):
		c.conn.Close()
		p.disable(err)
		if pe.before {
			return fmt.Errorf("%w: %w", ErrNativeOff, err)
		}
	case err == nil, errors.As(err, &ex) && !c.sent:
		// The server ended the query, before any of its data was sent
		// when it failed: the connection is clean.
		p.put(c)
	default:
		c.conn.Close()
	}
	return err
}

func (c *nativeConn) insert(query, queryID string, input proto.Input, rows int) error {
	c.sent = false
	c.query(query, queryID)
	c.block(nil, 0) // no external tables
	if err := c.flush(); err != nil {
		return err
	}
	header, err := c.header()
	if err != nil {
		return misunderstood(err, true)
	}
	if len(header) != len(input) {
		return protoErrorf("%d columns in the server's header for %d sent", len(header), len(input))
	}
	for i, h := range header {
		if h.Name != input[i].Name {
			return protoErrorf("column %d is %s in the server's header, %s sent", i, h.Name, input[i].Name)
		}
		if err := Conform(input[i], h.Type); err != nil {
			// Nothing sent yet: abandoning the connection cancels the
			// query, which stores nothing.
			return fmt.Errorf("%w: %w", ErrTypes, err)
		}
	}
	// From here on a server that fails the INSERT (a fence refusing the
	// batch, a view's error) may answer before it has read all of the
	// data; what it left unread would be taken for the next query's
	// packets (UNEXPECTED_PACKET_FROM_CLIENT), so the connection is not
	// reused after an exception (h18c found it).
	c.sent = true
	if err := c.block(input, rows); err != nil {
		return err
	}
	c.block(nil, 0) // end of data
	if err := c.flush(); err != nil {
		return err
	}
	return misunderstood(c.end(), false)
}

// query writes the Query packet at nativeRevision (ClickHouse's
// Connection::sendQuery and ClientInfo::write).
func (c *nativeConn) query(query, queryID string) {
	b := &c.buf
	proto.ClientCodeQuery.Encode(b)
	b.PutString(queryID)
	b.PutByte(1) // initial query
	b.PutString("")
	b.PutString("")
	b.PutString(c.conn.LocalAddr().String())
	b.PutByte(1) // TCP
	b.PutString("")
	host, _ := os.Hostname()
	b.PutString(host)
	b.PutString(clientName)
	b.PutInt(1) // major
	b.PutInt(0) // minor
	b.PutInt(nativeRevision)
	b.PutString("") // quota key
	b.PutInt(0)     // version patch
	b.PutString("") // end of settings
	b.PutInt(int(proto.StageComplete))
	b.PutInt(int(proto.CompressionEnabled))
	b.PutString(query)
}

// frameSize is how much of a block is encoded before it is compressed
// and sent: a block goes out in LZ4 frames of about this size (cut after
// the column that passes it; the server reads the frames as one stream),
// so a connection holds one column's worth of encoded rows at a time,
// not the whole block.
const frameSize = 1 << 20

// block writes a Data packet holding input (none: the empty block that
// ends a stream), LZ4-compressed, sending the frames of a large block as
// they are made; the last one stays in buf for the caller's flush.
func (c *nativeConn) block(input proto.Input, rows int) error {
	proto.ClientCodeData.Encode(&c.buf)
	c.buf.PutString("") // external table name
	body := &c.body
	body.Reset()
	proto.BlockInfo{BucketNum: -1}.Encode(body)
	body.PutInt(len(input))
	body.PutInt(rows)
	for _, col := range input {
		if n := col.Data.Rows(); n != rows {
			return fmt.Errorf("column %s has %d rows, the block %d", col.Name, n, rows)
		}
		col.EncodeStart(body, nativeRevision)
		if v, ok := col.Data.(proto.Preparable); ok {
			if err := v.Prepare(); err != nil {
				return fmt.Errorf("column %s: %w", col.Name, err)
			}
		}
		if rows > 0 {
			if v, ok := col.Data.(proto.StateEncoder); ok {
				v.EncodeState(body)
			}
			col.Data.EncodeColumn(body)
		}
		if len(body.Buf) >= frameSize {
			if err := c.frame(); err != nil {
				return err
			}
			if err := c.flush(); err != nil {
				return err
			}
		}
	}
	return c.frame()
}

// frame compresses what body holds into one frame at the end of buf.
func (c *nativeConn) frame() error {
	if len(c.body.Buf) == 0 {
		return nil
	}
	if err := c.comp.Compress(c.body.Buf); err != nil {
		return err
	}
	c.buf.Buf = append(c.buf.Buf, c.comp.Data...)
	c.body.Reset()
	return nil
}

// trim lets go of buffers a large column made large, so that idle
// connections keep little memory.
func (c *nativeConn) trim() {
	if cap(c.buf.Buf) > 4*frameSize {
		c.buf.Buf = nil
	}
	if cap(c.body.Buf) > 4*frameSize {
		c.body.Buf = nil
	}
	if cap(c.comp.Data) > 4*frameSize {
		c.comp.Data = nil
	}
}

type headerColumn struct {
	Name string
	Type proto.ColumnType
}

// header reads the server's answer to an INSERT up to the block that
// describes the table's columns.
func (c *nativeConn) header() ([]headerColumn, error) {
	for {
		code, err := c.r.UVarInt()
		if err != nil {
			return nil, err
		}
		switch proto.ServerCode(code) {
		case proto.ServerCodeData:
			return c.readHeader()
		case proto.ServerCodeException:
			return nil, c.exception()
		case proto.ServerCodeTableColumns:
			if err := c.skipStrings(2); err != nil {
				return nil, err
			}
		case proto.ServerCodeProgress:
			if err := c.progress(); err != nil {
				return nil, err
			}
		default:
			return nil, protoErrorf("unexpected packet %s before the INSERT's header", proto.ServerCode(code))
		}
	}
}

func (c *nativeConn) readHeader() ([]headerColumn, error) {
	if err := c.skipStrings(1); err != nil { // external table name
		return nil, err
	}
	c.r.EnableCompression()
	defer c.r.DisableCompression()
	var info proto.BlockInfo
	if err := info.Decode(c.r); err != nil {
		return nil, err
	}
	cols, err := c.r.Int()
	if err != nil {
		return nil, err
	}
	rows, err := c.r.Int()
	if err != nil {
		return nil, err
	}
	if rows != 0 || cols < 0 || cols > 10_000 {
		return nil, protoErrorf("header block of %d columns, %d rows", cols, rows)
	}
	out := make([]headerColumn, cols)
	for i := range out {
		if out[i].Name, err = c.r.Str(); err != nil {
			return nil, err
		}
		t, err := c.r.Str()
		if err != nil {
			return nil, err
		}
		out[i].Type = proto.ColumnType(t)
	}
	return out, nil
}

// end reads the server's answer to the data up to the end of the query.
func (c *nativeConn) end() error {
	for {
		code, err := c.r.UVarInt()
		if err != nil {
			return err
		}
		switch proto.ServerCode(code) {
		case proto.ServerCodeEndOfStream:
			return nil
		case proto.ServerCodeException:
			return c.exception()
		case proto.ServerCodeProgress:
			if err := c.progress(); err != nil {
				return err
			}
		case proto.ServerCodeProfile:
			var p proto.Profile
			if err := p.DecodeAware(c.r, nativeRevision); err != nil {
				return err
			}
		case proto.ServerCodeTableColumns:
			if err := c.skipStrings(2); err != nil {
				return err
			}
		default:
			return &protocolError{msg: fmt.Sprintf("unexpected packet %s after the INSERT's data", proto.ServerCode(code))}
		}
	}
}

func (c *nativeConn) progress() error {
	var p proto.Progress
	return p.DecodeAware(c.r, nativeRevision)
}

func (c *nativeConn) skipStrings(n int) error {
	for range n {
		if _, err := c.r.StrRaw(); err != nil {
			return err
		}
	}
	return nil
}

// exception reads an Exception packet (and the ones nested in it) as the
// driver's error type, which KindOf and checkpoint.IsFenced look at.
func (c *nativeConn) exception() error {
	var first *clickhouse.Exception
	for {
		code, err := c.r.Int32()
		if err != nil {
			return err
		}
		name, err := c.r.Str()
		if err != nil {
			return err
		}
		msg, err := c.r.Str()
		if err != nil {
			return err
		}
		stack, err := c.r.Str()
		if err != nil {
			return err
		}
		nested, err := c.r.Bool()
		if err != nil {
			return err
		}
		if first == nil {
			first = &clickhouse.Exception{Code: code, Name: name, Message: msg, StackTrace: stack}
		}
		if !nested {
			return first
		}
	}
}

// alive reports whether an idle connection is still open: the server has
// not closed it (a restart, its idle timeout) nor sent anything.
func alive(conn net.Conn) bool {
	if t, ok := conn.(*trackedConn); ok {
		conn = t.Conn
	}
	if t, ok := conn.(*tls.Conn); ok {
		conn = t.NetConn()
	}
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return true
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	ok = true
	err = raw.Read(func(fd uintptr) bool {
		var b [1]byte
		n, err := syscall.Read(int(fd), b[:])
		switch {
		case n == 0 && err == nil, n > 0:
			ok = false // closed, or data nobody asked for
		case err == syscall.EAGAIN || err == syscall.EWOULDBLOCK:
		default:
			ok = false
		}
		return true
	})
	return ok && err == nil
}

// Conform makes column c encode itself as type t, the type the server's
// table has (a time column picks DateTime or DateTime64), or says it
// cannot.
func Conform(c proto.InputColumn, t proto.ColumnType) error {
	if in, ok := c.Data.(proto.Inferable); ok {
		if err := in.Infer(t); err != nil {
			return fmt.Errorf("column %s: %w", c.Name, err)
		}
		return nil
	}
	if c.Data.Type() != t {
		return fmt.Errorf("column %s is %s, the table's is %s", c.Name, c.Data.Type(), t)
	}
	return nil
}
