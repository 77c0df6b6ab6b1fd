// Package chclient is logpipe's one way to talk to ClickHouse: a pool of
// native-protocol connections (clickhouse-go/v2) that fails over from a
// server that accepts connections and never answers, with read and query
// deadlines; typed reads (Scan into Go values, Value and Values) and text
// reads for display; the one quoting of string literals (String) and of
// identifiers (Ident); the server's version; the servers of a cluster
// (EachServer, ShardOf); KILL QUERY; and the kind of an error (KindOf),
// decided from ClickHouse's exception codes and from network errors.
//
// It knows nothing of Kafka, of logpipe's tables or of exactly-once: the
// packages checkpoint (insert ids, fences, watermarks) and sink (columnar
// inserts with retry) build on it, as do schemas, warehouse, watch and
// detect.
package chclient
