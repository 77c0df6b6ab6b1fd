#!/usr/bin/env bash
# A local ClickHouse cluster for tests and trials: Debian's zookeeper and two
# clickhouse-server processes (deploy/local/clickhouse.sh) on free loopback
# ports, everything in a private directory.
#
#   cluster.sh install            apt-get install zookeeper (and clickhouse) when missing
#   cluster.sh start DIR [LAYOUT] LAYOUT: 2x1 = 2 shards x 1 replica (default), 1x2 = 1 shard x 2 replicas
#   cluster.sh stop DIR
#   cluster.sh zk-start DIR       start ZooKeeper again (same port, same data) after it stopped
#   cluster.sh env DIR            ZK_PORT, LAYOUT, CH1_TCP, CH1_HTTP, CH2_TCP, CH2_HTTP
#
# The cluster is called "logpipe" in remote_servers; macros {shard} and
# {replica} are set on each server.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
CH="$HERE/clickhouse.sh"
ZK_JARS=/usr/share/java/zookeeper.jar

die() { echo "cluster.sh: $*" >&2; exit 1; }

# free_port EXCLUDED...: a random loopback port nobody listens on, in
# 20000-31999 like clickhouse.sh's. Not a port bound to 0: that comes from
# the kernel's ephemeral range (32768-60999), which every outgoing
# connection on the machine also draws from, so a client socket of another
# test could take it before the server binds it ("Address already in use").
free_port() {
	local p i
	for ((i = 0; i < 500; i++)); do
		p=$((20000 + (RANDOM * 32768 + RANDOM) % 12000))
		[[ " $* " == *" $p "* ]] && continue
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && continue
		echo "$p"
		return 0
	done
	return 1
}

cmd_install() {
	bash "$CH" install
	if [[ ! -f $ZK_JARS ]]; then
		apt-get update -q >/dev/null
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q zookeeper >/dev/null
	fi
	command -v java >/dev/null || die "java is missing (zookeeper needs it)"
}

# zk_ok: ZooKeeper serves requests. ("ruok" answers imok as soon as the
# process runs; a server not serving yet closes new sessions, and 18.16's
# DDLWorker can crash on that: "stat" shows a Mode only once it serves.)
zk_ok() {
	local port=$1 reply="" line
	{ exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null || return 1
	printf 'stat' >&3
	while read -r -t 2 line <&3; do reply+="$line"$'\n'; done
	exec 3>&- 3<&-
	[[ $reply == *Mode:* ]]
}

# ch_zk_ok TCP_PORT: that ClickHouse server has a ZooKeeper session.
ch_zk_ok() {
	clickhouse-client --host 127.0.0.1 --port "$1" -q "SELECT count() FROM system.zookeeper WHERE path = '/'" >/dev/null 2>&1
}

# zk_launch DIR PORT: start ZooKeeper from DIR/zk/zoo.cfg and wait until it
# serves requests.
zk_launch() {
	local dir=$1 zk=$2
	nohup java -Xmx256m -Dzookeeper.log.dir="$dir/zk/log" -cp "/etc/zookeeper/conf:$ZK_JARS" \
		org.apache.zookeeper.server.quorum.QuorumPeerMain "$dir/zk/zoo.cfg" >>"$dir/zk/log/zk.out" 2>&1 &
	echo $! >"$dir/zk/pid"
	for _ in $(seq 1 120); do
		zk_ok "$zk" && break
		sleep 0.5
	done
	zk_ok "$zk" || { tail -20 "$dir/zk/log/zk.out" >&2; die "zookeeper did not answer on port $zk"; }
}

# cmd_zk_start DIR: start the cluster's ZooKeeper again (same port and data)
# after it was stopped or killed; the servers reconnect by themselves.
cmd_zk_start() {
	local dir
	dir=$(cd "$1" && pwd)
	[[ -f $dir/cluster.env ]] || die "no cluster in $dir"
	# shellcheck disable=SC1091
	source "$dir/cluster.env"
	zk_ok "$ZK_PORT" && return 0
	zk_launch "$dir" "$ZK_PORT"
	echo "cluster.sh: zookeeper started again on port $ZK_PORT"
}

cmd_start() {
	local dir=$1 layout=${2:-2x1}
	[[ $layout == 2x1 || $layout == 1x2 ]] || die "layout must be 2x1 or 1x2, not $layout"
	mkdir -p "$dir/zk/data" "$dir/zk/log"
	dir=$(cd "$dir" && pwd)
	if [[ -f $dir/cluster.env ]]; then
		# shellcheck disable=SC1091
		source "$dir/cluster.env"
		if zk_ok "$ZK_PORT" && bash "$CH" status "$dir/ch1" >/dev/null 2>&1 && bash "$CH" status "$dir/ch2" >/dev/null 2>&1; then
			echo "cluster.sh: already running in $dir"
			cat "$dir/cluster.env"
			return 0
		fi
	fi
	local zk ch1t ch1h ch1i ch2t ch2h ch2i
	zk=$(free_port) || die "no free port"
	ch1t=$(free_port "$zk") || die "no free port"
	ch1h=$(free_port "$zk" "$ch1t") || die "no free port"
	ch1i=$(free_port "$zk" "$ch1t" "$ch1h") || die "no free port"
	ch2t=$(free_port "$zk" "$ch1t" "$ch1h" "$ch1i") || die "no free port"
	ch2h=$(free_port "$zk" "$ch1t" "$ch1h" "$ch1i" "$ch2t") || die "no free port"
	ch2i=$(free_port "$zk" "$ch1t" "$ch1h" "$ch1i" "$ch2t" "$ch2h") || die "no free port"
	cat >"$dir/zk/zoo.cfg" <<EOF
tickTime=500
initLimit=10
syncLimit=5
dataDir=$dir/zk/data
clientPort=$zk
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=ruok,stat
EOF
	zk_launch "$dir" "$zk"

	local i tcp http inter shard replica
	for i in 1 2; do
		if [[ $layout == 2x1 ]]; then shard=$i replica=1; else shard=1 replica=$i; fi
		tcp=$ch1t http=$ch1h inter=$ch1i
		[[ $i == 2 ]] && tcp=$ch2t http=$ch2h inter=$ch2i
		mkdir -p "$dir/ch$i/config.d"
		{
			echo '<?xml version="1.0"?>'
			echo '<yandex>'
			echo "    <interserver_http_port>$inter</interserver_http_port>"
			echo '    <interserver_http_host>127.0.0.1</interserver_http_host>'
			echo "    <zookeeper><node><host>127.0.0.1</host><port>$zk</port></node><session_timeout_ms>6000</session_timeout_ms></zookeeper>"
			echo "    <macros><shard>$shard</shard><replica>r$replica</replica></macros>"
			echo '    <remote_servers><logpipe>'
			if [[ $layout == 2x1 ]]; then
				echo "        <shard><internal_replication>true</internal_replication><replica><host>127.0.0.1</host><port>$ch1t</port></replica></shard>"
				echo "        <shard><internal_replication>true</internal_replication><replica><host>127.0.0.1</host><port>$ch2t</port></replica></shard>"
			else
				echo "        <shard><internal_replication>true</internal_replication><replica><host>127.0.0.1</host><port>$ch1t</port></replica><replica><host>127.0.0.1</host><port>$ch2t</port></replica></shard>"
			fi
			echo '    </logpipe></remote_servers>'
			echo '    <distributed_ddl><path>/clickhouse/task_queue/ddl</path></distributed_ddl>'
			echo '</yandex>'
		} >"$dir/ch$i/config.d/cluster.xml"
		CH_TCP_PORT=$tcp CH_HTTP_PORT=$http bash "$CH" start "$dir/ch$i" >/dev/null
	done
	# Both servers reach ZooKeeper before anyone runs DDL ON CLUSTER.
	for tcp in "$ch1t" "$ch2t"; do
		for _ in $(seq 1 120); do
			ch_zk_ok "$tcp" && break
			sleep 0.5
		done
		ch_zk_ok "$tcp" || die "clickhouse on port $tcp has no ZooKeeper session"
	done
	printf 'ZK_PORT=%s\nLAYOUT=%s\nCH1_TCP=%s\nCH1_HTTP=%s\nCH2_TCP=%s\nCH2_HTTP=%s\n' "$zk" "$layout" "$ch1t" "$ch1h" "$ch2t" "$ch2h" >"$dir/cluster.env"
	echo "cluster.sh: started in $dir (layout $layout)"
	cat "$dir/cluster.env"
}

cmd_stop() {
	local dir=$1
	for i in 1 2; do
		[[ -d $dir/ch$i ]] && bash "$CH" stop "$dir/ch$i" >/dev/null 2>&1 || true
	done
	if [[ -f $dir/zk/pid ]]; then
		local zpid
		zpid=$(cat "$dir/zk/pid")
		# Only our ZooKeeper: the pid may have been reused since it exited.
		if tr '\0' ' ' <"/proc/$zpid/cmdline" 2>/dev/null | grep -qF -- "$dir/zk/zoo.cfg"; then
			kill "$zpid" 2>/dev/null || true
		fi
		rm -f "$dir/zk/pid"
	fi
	rm -f "$dir/cluster.env"
	echo "cluster.sh: stopped $dir"
}

case ${1:-} in
install) cmd_install ;;
start) [[ $# -ge 2 ]] || die "usage: cluster.sh start DIR [2x1|1x2]"; cmd_start "$2" "${3:-2x1}" ;;
stop) [[ $# -eq 2 ]] || die "usage: cluster.sh stop DIR"; cmd_stop "$2" ;;
zk-start) [[ $# -eq 2 ]] || die "usage: cluster.sh zk-start DIR"; cmd_zk_start "$2" ;;
env) [[ $# -eq 2 ]] || die "usage: cluster.sh env DIR"; cat "$2/cluster.env" ;;
*) die "usage: cluster.sh install | start DIR [2x1|1x2] | stop DIR | zk-start DIR | env DIR" ;;
esac
