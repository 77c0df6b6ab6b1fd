// Package checkpoint holds logpipe's exactly-once logic in one place, with
// its SQL beside it (sql.go). ClickHouse itself is the checkpoint: what a
// Kafka partition has stored is read back from the server, never from a
// local file, so a crash between an INSERT and the offset commit, a
// rebalance, or a paused process that wakes up cannot store a record
// twice.
//
// The parts, all keyed by Kafka topic and partition:
//
//   - Insert ids (InsertID): the query id of every INSERT of a partition's
//     batch names the topic, the partition, the table and the batch's
//     first offset, logpipe:<topic>:<partition>:<table>:<offset>, so a new
//     owner finds the inserts of an earlier one still running.
//   - Waiting for running inserts (WaitInserts): until none of the
//     partition is in system.processes; KILL QUERY after a timeout.
//   - Watermarks (Watermarks): the highest offset of the partition stored
//     in each table, kept by materialized views inside each INSERT
//     (migration 0003_watermarks, table ingest_watermarks).
//   - Fences (Fence, Fences, ErrFenced): an epoch per partition, recorded
//     in ingest_fences (migration 0019_fences) when the partition is
//     assigned; the server refuses a batch carrying an older epoch.
//   - The landed check (Landed): whether an INSERT whose outcome is unknown
//     (timed out, connection broken) was stored after all, before it is
//     sent again.
//
// Store.Acquire does what taking over a partition needs, in order: fence,
// wait for running inserts, read the watermarks. The tables are created by
// the migrations of package schemas; this package only reads and writes
// them.
package checkpoint
