package chclient

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// Kind is what an error means for the operation that failed with it.
type Kind int

const (
	// Permanent: sending the same request again fails the same way (a
	// schema, type, syntax or permission error, or a bug).
	Permanent Kind = iota
	// Transient: the server or the network may recover, and the same
	// request may then succeed (network failures, timeouts, a restarting
	// or overloaded server, a replica without Keeper, a shard down).
	Transient
	// Canceled: the caller gave up (its context was cancelled).
	Canceled
)

func (k Kind) String() string {
	switch k {
	case Transient:
		return "transient"
	case Canceled:
		return "canceled"
	}
	return "permanent"
}

// ClickHouse exception codes (src/Common/ErrorCodes.cpp) logpipe decides on.
const (
	CodeUnexpectedEndOfFile        = 3
	CodeUnknownTable               = 60
	CodeUnexpectedPacketFromClient = 101
	CodeTimeoutExceeded            = 159
	CodeReadonly                   = 164
	CodeTooManySimultaneous        = 202
	CodeSocketTimeout              = 209
	CodeNetworkError               = 210
	CodeQueryIDAlreadyRunning      = 216
	CodeNoZooKeeper                = 225
	CodeMemoryLimitExceeded        = 241
	CodeTableIsReadOnly            = 242
	CodeTooManyParts               = 252
	CodeAllConnectionTriesFailed   = 279
	CodeTooFewLiveReplicas         = 285
	CodeUnknownStatusOfInsert      = 319
	CodeThrowIfValueIsNonZero      = 395 // throwIf
	CodeSystemError                = 425
	CodeKeeperException            = 999
	CodePocoException              = 1000
)

// transientCodes are the exception codes of failures that may pass.
var transientCodes = map[int32]bool{
	CodeUnexpectedEndOfFile: true,
	// The connection's conversation is out of step (data the server did
	// not read before it failed the previous query); the next attempt
	// goes on another connection.
	CodeUnexpectedPacketFromClient: true,
	CodeTimeoutExceeded:            true,
	CodeReadonly:                   true, // replica in read-only mode
	CodeTooManySimultaneous:        true,
	CodeSocketTimeout:              true,
	CodeNetworkError:               true,
	CodeQueryIDAlreadyRunning:      true, // an earlier attempt still runs
	CodeNoZooKeeper:                true,
	CodeMemoryLimitExceeded:        true,
	CodeTableIsReadOnly:            true,
	CodeTooManyParts:               true,
	CodeAllConnectionTriesFailed:   true, // a shard of a Distributed table is down
	CodeTooFewLiveReplicas:         true,
	CodeUnknownStatusOfInsert:      true,
	CodeSystemError:                true,
	CodeKeeperException:            true,
}

// pocoNetClasses are the Poco exception classes, as ClickHouse prefixes
// their text, that are network failures. A Poco exception reaches the
// client with the one code POCO_EXCEPTION, whatever it was: the class the
// server put before the text is all that tells a refused connection from
// a bad argument.
var pocoNetClasses = []string{"Net Exception:", "Timeout:", "Connection refused", "Connection reset"}

// Exception returns the ClickHouse exception err carries, if any.
func Exception(err error) (*clickhouse.Exception, bool) {
	var ex *clickhouse.Exception
	ok := errors.As(err, &ex)
	return ex, ok
}

// Code returns the code of the ClickHouse exception err carries.
func Code(err error) (int32, bool) {
	ex, ok := Exception(err)
	if !ok {
		return 0, false
	}
	return ex.Code, true
}

// KindOf decides what err means: from the code of the ClickHouse
// exception it carries, else from the network, I/O and pool errors of the
// connection. An error that is none of these (a bug of the caller, a value
// the driver cannot encode) is Permanent.
func KindOf(err error) Kind {
	if err == nil {
		return Permanent
	}
	if errors.Is(err, context.Canceled) {
		return Canceled
	}
	if ex, ok := Exception(err); ok {
		if transientCodes[ex.Code] {
			return Transient
		}
		if ex.Code == CodePocoException {
			for _, c := range pocoNetClasses {
				if strings.HasPrefix(ex.Message, c) {
					return Transient
				}
			}
		}
		return Permanent
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, clickhouse.ErrAcquireConnTimeout) || errors.Is(err, driver.ErrBadConn) {
		return Transient
	}
	var ne net.Error
	var ce *ConnectError
	var pe *protocolError // the next attempt goes through clickhouse-go
	if errors.As(err, &ne) || errors.As(err, &ce) || errors.As(err, &pe) {
		return Transient
	}
	return Permanent
}

// Retryable reports whether an operation that failed with err may succeed
// if tried again (KindOf is Transient): network failures, timeouts, a
// restarting server, too many parts, memory pressure. Schema errors,
// authentication failures and cancellation are not retryable.
func Retryable(err error) bool { return KindOf(err) == Transient }
