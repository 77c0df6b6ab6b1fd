package checkpoint

// The SQL of the checkpoint, in one place. %[n]s are filled with a table
// name (for a cluster, the server's local table), a quoted topic
// (chclient.String) and a partition number. The tables are created by
// migrations 0003_watermarks (ingest_watermarks and its views) and
// 0019_fences (ingest_fences, the NAME_in entry tables and the views that
// refuse a stale epoch with throwIf).
const (
	// Watermarks of a partition, per target table.
	sqlWatermarks = "SELECT target, toInt64(maxMerge(max_offset)) FROM %[1]s WHERE _topic = %[2]s AND _partition = %[3]d GROUP BY target"

	// Replication state of this server's replica of a table.
	sqlReplica = "SELECT toUInt64(inserts_in_queue), toUInt64(log_max_index), toUInt64(log_pointer), zookeeper_path FROM system.replicas WHERE database = currentDatabase() AND table = %[1]s"

	// Entries of a replication log (path: its Keeper node).
	sqlLogEntries = "SELECT toUInt64(count()) FROM system.zookeeper WHERE path = %[1]s"

	// Running queries whose query id (or whose initial query's id, the
	// shards' parts of a Distributed insert) matches a LIKE pattern.
	sqlRunning      = "SELECT toUInt64(count()) FROM system.processes WHERE %[1]s"
	sqlRunningWhere = "query_id LIKE %[1]s OR initial_query_id LIKE %[1]s"

	// Highest fence of a partition (0: none).
	sqlFence = "SELECT toUInt64(maxMerge(epoch)) FROM %[1]s WHERE _topic = %[2]s AND _partition = %[3]d"

	// Record a fence.
	sqlWriteFence = "INSERT INTO %[1]s (_topic, _partition, epoch) SELECT %[2]s, toInt32(%[3]d), maxState(toUInt64(%[4]d))"
)

// Table names (schemas.LocalSuffix names a table's part on each server).
const (
	watermarksTable = "ingest_watermarks"
	fencesTable     = "ingest_fences"
	localSuffix     = "_local"
)
