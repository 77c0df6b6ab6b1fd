#!/usr/bin/env bash
# Local, throw-away ClickHouse server for tests and the demo.
#
# Uses Debian's clickhouse-server package (18.16 on bookworm). Everything the
# server needs lives in a private directory; /etc/clickhouse-server is neither
# read nor modified.
#
# Usage:
#   clickhouse.sh install              install clickhouse-server/-client via apt if missing
#   clickhouse.sh start DIR            start a server in DIR (no-op if already running)
#   clickhouse.sh stop DIR             SIGTERM, then SIGKILL after CH_STOP_TIMEOUT seconds
#   clickhouse.sh kill DIR             SIGKILL immediately (crash simulation)
#   clickhouse.sh restart DIR          stop + start on the same ports
#   clickhouse.sh status DIR           exit 0 if running and answering, 3 if not running, 1 if not answering
#   clickhouse.sh client DIR [ARGS]    clickhouse-client connected to the server in DIR
#   clickhouse.sh env DIR              print DIR/ports.env
#   clickhouse.sh logs DIR [N]         last N (default 50) lines of the server logs
#   clickhouse.sh add-user DIR NAME [PASSWORD]
#                                      add a user (18.16 has no CREATE USER; users live in DIR/users.d)
#
# Environment:
#   CH_TCP_PORT, CH_HTTP_PORT  ports to use (default: reuse DIR/ports.env if those are free,
#                              else pick free loopback ports in 20000-31999)
#   CH_START_TIMEOUT           seconds to wait for "SELECT 1" (default 60)
#   CH_STOP_TIMEOUT            seconds to wait after SIGTERM before SIGKILL (default 30)
#   CH_WATCH_PID               if set, a watchdog stops the server once this pid exits
#                              (used by the Go test helper so crashed test binaries don't leak servers)
#   CH_SERVER_BIN, CH_CLIENT_BIN  override binaries (default /usr/sbin/clickhouse-server, clickhouse-client)
set -euo pipefail
shopt -u patsub_replacement 2>/dev/null || true # bash 5.2: '&' in ${x//a/b} replacement means "the match"

SERVER_BIN=${CH_SERVER_BIN:-/usr/sbin/clickhouse-server}
CLIENT_BIN=${CH_CLIENT_BIN:-$(command -v clickhouse-client 2>/dev/null || echo /usr/bin/clickhouse-client)}
START_TIMEOUT=${CH_START_TIMEOUT:-60}
STOP_TIMEOUT=${CH_STOP_TIMEOUT:-30}
PORT_MIN=20000
PORT_SPAN=12000 # below the default ephemeral range (32768-60999)

log() { printf 'clickhouse.sh: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

usage() {
	sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
	exit 2
}

# ---------------------------------------------------------------- install

cmd_install() {
	if [[ -x "$SERVER_BIN" ]] && command -v clickhouse-client >/dev/null 2>&1; then
		return 0
	fi
	local sudo=()
	if [[ $(id -u) -ne 0 ]]; then
		command -v sudo >/dev/null 2>&1 || die "clickhouse is not installed and we are not root (no sudo either)"
		sudo=(sudo -n)
	fi
	command -v apt-get >/dev/null 2>&1 || die "clickhouse is not installed and apt-get is not available"
	# The package's postinst starts the system-wide service (port 9000/8123, user
	# clickhouse). We don't want that: deny service starts during the install via
	# the standard policy-rc.d hook, unless the machine already has one.
	local policy=/usr/sbin/policy-rc.d added_policy=0
	if [[ ! -e $policy ]]; then
		"${sudo[@]}" sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy"
		added_policy=1
	fi
	local rc=0
	log "installing clickhouse-server clickhouse-client via apt-get"
	{
		"${sudo[@]}" apt-get update &&
			"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
				clickhouse-server clickhouse-client
	} >&2 || rc=$?
	if [[ $added_policy -eq 1 ]]; then
		"${sudo[@]}" rm -f "$policy"
	fi
	[[ $rc -eq 0 ]] || die "apt-get failed (exit $rc)"
	[[ -x "$SERVER_BIN" ]] || die "$SERVER_BIN still missing after install"
}

# ---------------------------------------------------------------- helpers

# need_dir DIR: sets DIR (absolute), PIDFILE, PORTSFILE. DIR is created only by
# start and add-user (CREATE_DIR=1); other commands accept a missing DIR.
need_dir() {
	[[ $# -ge 1 && -n $1 ]] || usage
	if [[ ${CREATE_DIR:-0} == 1 ]]; then
		mkdir -p -- "$1"
	fi
	if [[ -d $1 ]]; then
		DIR=$(cd -- "$1" && pwd -P)
	else
		DIR=$(realpath -m -- "$1")
	fi
	PIDFILE=$DIR/server.pid
	PORTSFILE=$DIR/ports.env
}

# lock_dir: serialise start/stop/kill on the same DIR (fd 9, released on exit).
lock_dir() {
	[[ -d $DIR ]] || return 0
	exec 9>>"$DIR/.lock"
	flock -w 180 9 || die "timed out waiting for $DIR/.lock"
}

# alive PID: some thread of PID is still running. A zombie thread-group
# leader is not enough to call the process dead: after SIGKILL the leader
# turns Z at once while the server's other threads are still exiting and
# still hold its files, listening sockets included (seen: both ports still
# accepting after `kill` returned). Reads with builtins only: no fork per
# thread.
alive() {
	local pid=$1 t stat
	[[ -n $pid && -d /proc/$pid/task ]] || return 1
	for t in /proc/"$pid"/task/*/stat; do
		{ read -r stat <"$t"; } 2>/dev/null || continue
		stat=${stat##*) }
		[[ ${stat%% *} == [ZX] ]] || return 0
	done
	return 1
}

# server_pid: prints the pid of the server running from $DIR, or fails.
server_pid() {
	[[ -f $PIDFILE ]] || return 1
	local pid
	pid=$(<"$PIDFILE")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	alive "$pid" || return 1
	# Guard against pid reuse: the process must be our server.
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "--config-file=$DIR/config.xml" || return 1
	echo "$pid"
}

load_ports() {
	CH_TCP_PORT_CUR='' CH_HTTP_PORT_CUR=''
	[[ -f $PORTSFILE ]] || return 0
	local k v
	while IFS='=' read -r k v; do
		case $k in
		CH_TCP_PORT) CH_TCP_PORT_CUR=$v ;;
		CH_HTTP_PORT) CH_HTTP_PORT_CUR=$v ;;
		esac
	done <"$PORTSFILE"
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# pick_port EXCLUDED...: a random loopback port nobody listens on.
pick_port() {
	local p i
	for ((i = 0; i < 500; i++)); do
		p=$((PORT_MIN + (RANDOM * 32768 + RANDOM) % PORT_SPAN))
		[[ " $* " == *" $p "* ]] && continue
		port_in_use "$p" && continue
		echo "$p"
		return 0
	done
	return 1
}

# http_select1 PORT: true if "SELECT 1" over HTTP returns 1 (pure bash, no curl needed).
http_select1() (
	port=$1 body=''
	exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
	printf 'GET /?query=SELECT%%201 HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
	while IFS= read -r -t 5 line <&3; do body=$line; done
	[[ ${body%$'\r'} == 1 ]]
) 2>/dev/null

native_select1() {
	"$CLIENT_BIN" --host 127.0.0.1 --port "$1" -q 'SELECT 1' 2>/dev/null | grep -qx 1
}

log_tail() {
	local n=${1:-50} f
	for f in "$DIR/log/clickhouse-server.err.log" "$DIR/log/stdout.log"; do
		[[ -s $f ]] || continue
		echo "----- tail -n $n $f" >&2
		tail -n "$n" "$f" >&2
	done
}

xml_escape() {
	local s=$1
	s=${s//&/&amp;}
	s=${s//</&lt;}
	s=${s//>/&gt;}
	printf '%s' "$s"
}

# ---------------------------------------------------------------- config

write_config() {
	local tcp=$1 http=$2 d
	d=$(xml_escape "$DIR")
	cat >"$DIR/config.xml.tmp" <<EOF
<?xml version="1.0"?>
<!-- Generated by deploy/local/clickhouse.sh; rewritten on every start. -->
<yandex>
    <logger>
        <level>information</level>
        <log>$d/log/clickhouse-server.log</log>
        <errorlog>$d/log/clickhouse-server.err.log</errorlog>
        <size>100M</size>
        <count>2</count>
        <console>0</console>
    </logger>

    <!-- Loopback only. No interserver_http_port: no replication, nothing else listens. -->
    <listen_host>127.0.0.1</listen_host>
    <listen_try>0</listen_try>
    <tcp_port>$tcp</tcp_port>
    <http_port>$http</http_port>

    <max_connections>1024</max_connections>
    <keep_alive_timeout>3</keep_alive_timeout>
    <max_concurrent_queries>100</max_concurrent_queries>

    <!-- Caches are allocated on demand; keep them small for a dev box. -->
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <mark_cache_size>67108864</mark_cache_size>

    <path>$d/data/</path>
    <tmp_path>$d/tmp/</tmp_path>
    <user_files_path>$d/user_files/</user_files_path>
    <format_schema_path>$d/format_schemas/</format_schema_path>
    <users_config>$d/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mlock_executable>false</mlock_executable>
    <builtin_dictionaries_reload_interval>3600</builtin_dictionaries_reload_interval>
    <max_session_timeout>3600</max_session_timeout>
    <default_session_timeout>60</default_session_timeout>

    <!-- Tests may drop anything. -->
    <max_table_size_to_drop>0</max_table_size_to_drop>
    <max_partition_size_to_drop>0</max_partition_size_to_drop>

    <!-- system.query_log: log_queries=1 is set in the default profile (24.x default). -->
    <query_log>
        <database>system</database>
        <table>query_log</table>
        <partition_by>toYYYYMM(event_date)</partition_by>
        <flush_interval_milliseconds>1000</flush_interval_milliseconds>
    </query_log>
</yandex>
EOF
	mv -f "$DIR/config.xml.tmp" "$DIR/config.xml"

	cat >"$DIR/users.xml.tmp" <<'EOF'
<?xml version="1.0"?>
<!-- Generated by deploy/local/clickhouse.sh; rewritten on every start.
     Extra users: drop files into users.d/ (see "clickhouse.sh add-user"). -->
<yandex>
    <profiles>
        <default>
            <!-- ClickHouse 18.16 only: LowCardinality is experimental there.
                 Production (24.x) DDL must not carry this setting. -->
            <allow_experimental_low_cardinality_type>1</allow_experimental_low_cardinality_type>
            <!-- 24.x default; 18.16 defaults to 0 and then system.query_log stays empty. -->
            <log_queries>1</log_queries>
            <!-- 18.16 detects 1 physical core on a 2-vCPU VM and defaults max_threads to 1. -->
            <max_threads>2</max_threads>
            <!-- Sane limits for a 2-core / 24 GiB machine shared with other processes. -->
            <max_memory_usage>4294967296</max_memory_usage>
            <max_memory_usage_for_all_queries>8589934592</max_memory_usage_for_all_queries>
            <max_bytes_before_external_group_by>2147483648</max_bytes_before_external_group_by>
            <max_bytes_before_external_sort>2147483648</max_bytes_before_external_sort>
            <use_uncompressed_cache>0</use_uncompressed_cache>
            <!-- Idle native connections notice a shutdown only every poll_interval
                 seconds (default 10): makes a graceful stop take ~1s instead of ~10s
                 while a client pool (clickhouse-go) holds idle connections. -->
            <poll_interval>1</poll_interval>
            <load_balancing>random</load_balancing>
        </default>
        <readonly>
            <readonly>1</readonly>
        </readonly>
    </profiles>

    <users>
        <default>
            <password></password>
            <networks>
                <ip>127.0.0.1</ip>
                <ip>::1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>

    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
EOF
	mv -f "$DIR/users.xml.tmp" "$DIR/users.xml"
}

# ---------------------------------------------------------------- start/stop

print_ports() {
	load_ports
	echo "CH_TCP_PORT=$CH_TCP_PORT_CUR"
	echo "CH_HTTP_PORT=$CH_HTTP_PORT_CUR"
}

start_watchdog() {
	local watch=$1 pid=$2
	[[ $watch =~ ^[0-9]+$ ]] || die "CH_WATCH_PID must be a pid, got '$watch'"
	# Same liveness rule as alive(): a zombie counts as dead.
	# shellcheck disable=SC2016 # the inner script expands its own variables
	# Both pids are compared with their start times (field 22 of
	# /proc/PID/stat) as well: on a busy machine pids are reused within
	# seconds (pid_max is often 32768), and a watchdog that outlived its
	# server must never stop the process that got its pid (another test's
	# server).
	setsid bash -c '
		stat() { local s; s=$(cat /proc/$1/stat 2>/dev/null) || return 1; s=${s##*) }; set -- $s; [[ $1 != Z ]] && echo "${20}"; }
		w=$1 s=$2 t=$3
		ws=$(stat "$w") || exit 0
		ss=$(stat "$s") || exit 0
		alive() { [[ $(stat "$1") == "$2" ]]; }
		while alive "$w" "$ws" && alive "$s" "$ss"; do sleep 1; done
		alive "$s" "$ss" || exit 0
		kill -TERM "$s" 2>/dev/null || exit 0
		for ((i = 0; i < t * 10; i++)); do alive "$s" "$ss" || exit 0; sleep 0.1; done
		alive "$s" "$ss" && kill -KILL "$s" 2>/dev/null || true
	' clickhouse-watchdog "$watch" "$pid" "$STOP_TIMEOUT" </dev/null >/dev/null 2>&1 9>&- &
}

# try_start TCP HTTP: 0 = up, 1 = failed, 2 = failed because a port was taken.
try_start() {
	local tcp=$1 http=$2 errlog="$DIR/log/clickhouse-server.err.log" off pid deadline
	write_config "$tcp" "$http"
	off=$(stat -c %s "$errlog" 2>/dev/null || echo 0)
	# setsid: own session, so ^C in a terminal or a signal to the caller's process
	# group does not hit the server. All fds are redirected so callers that capture
	# our output (e.g. Go's exec) don't wait for the server.
	# 9>&-: the server must not inherit (and hold forever) the DIR lock.
	(cd "$DIR" && exec setsid "$SERVER_BIN" --config-file="$DIR/config.xml" \
		</dev/null >>"$DIR/log/stdout.log" 2>&1 9>&-) &
	pid=$!
	echo "$pid" >"$PIDFILE"
	deadline=$((SECONDS + START_TIMEOUT))
	while ((SECONDS < deadline)); do
		if ! alive "$pid"; then
			log "server exited during startup"
			rm -f "$PIDFILE"
			if tail -c +"$((off + 1))" "$errlog" 2>/dev/null | grep -q 'Address already in use'; then
				return 2
			fi
			log_tail 40
			return 1
		fi
		if native_select1 "$tcp" && http_select1 "$http"; then
			return 0
		fi
		sleep 0.2
	done
	log "server did not answer SELECT 1 within ${START_TIMEOUT}s; killing it"
	kill -KILL "$pid" 2>/dev/null || true
	rm -f "$PIDFILE"
	log_tail 40
	return 1
}

cmd_start() {
	need_dir "$@"
	[[ -x $SERVER_BIN ]] || die "$SERVER_BIN not found; run '$0 install' first"
	lock_dir
	local pid
	if pid=$(server_pid); then
		log "already running in $DIR (pid $pid)"
		print_ports
		return 0
	fi
	mkdir -p "$DIR"/{data,tmp,log,user_files,format_schemas,users.d}
	rm -f "$PIDFILE"

	load_ports
	local tcp=${CH_TCP_PORT:-} http=${CH_HTTP_PORT:-} fixed=0
	if [[ -n $tcp || -n $http ]]; then
		[[ -n $tcp && -n $http ]] || die "set both CH_TCP_PORT and CH_HTTP_PORT, or neither"
		fixed=1
	elif [[ -n $CH_TCP_PORT_CUR && -n $CH_HTTP_PORT_CUR ]] &&
		! port_in_use "$CH_TCP_PORT_CUR" && ! port_in_use "$CH_HTTP_PORT_CUR"; then
		tcp=$CH_TCP_PORT_CUR http=$CH_HTTP_PORT_CUR # same ports as last time
	fi

	local attempt rc
	for ((attempt = 1; attempt <= 5; attempt++)); do
		if [[ -z $tcp ]]; then
			tcp=$(pick_port) || die "no free port"
			http=$(pick_port "$tcp") || die "no free port"
		fi
		if [[ $fixed -eq 1 ]] && { port_in_use "$tcp" || port_in_use "$http"; }; then
			die "port $tcp or $http on 127.0.0.1 is already in use"
		fi
		rc=0
		try_start "$tcp" "$http" || rc=$?
		case $rc in
		0) break ;;
		2)
			[[ $fixed -eq 0 ]] || { log_tail 20; die "port $tcp or $http on 127.0.0.1 is already in use"; }
			log "port collision on $tcp/$http, retrying with other ports"
			tcp='' http=''
			;;
		*) die "failed to start clickhouse-server in $DIR" ;;
		esac
	done
	[[ $rc -eq 0 ]] || die "failed to start clickhouse-server in $DIR (ports kept colliding)"

	printf 'CH_TCP_PORT=%s\nCH_HTTP_PORT=%s\n' "$tcp" "$http" >"$PORTSFILE.tmp"
	mv -f "$PORTSFILE.tmp" "$PORTSFILE"
	pid=$(<"$PIDFILE")
	if [[ -n ${CH_WATCH_PID:-} ]]; then
		start_watchdog "$CH_WATCH_PID" "$pid"
	fi
	log "started in $DIR (pid $pid, tcp 127.0.0.1:$tcp, http 127.0.0.1:$http)"
	print_ports
}

cmd_stop() {
	need_dir "$@"
	lock_dir
	local pid i
	if ! pid=$(server_pid); then
		rm -f "$PIDFILE"
		log "not running in $DIR"
		return 0
	fi
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
		alive "$pid" || break
		sleep 0.1
	done
	if alive "$pid"; then
		log "still running after ${STOP_TIMEOUT}s, sending SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
		for ((i = 0; i < 100; i++)); do
			alive "$pid" || break
			sleep 0.1
		done
		alive "$pid" && die "pid $pid survived SIGKILL"
	fi
	rm -f "$PIDFILE"
	log "stopped (pid $pid)"
}

cmd_kill() {
	need_dir "$@"
	lock_dir
	local pid i
	if ! pid=$(server_pid); then
		log "not running in $DIR"
		return 0
	fi
	kill -KILL "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		alive "$pid" || break
		sleep 0.1
	done
	alive "$pid" && die "pid $pid survived SIGKILL"
	log "killed (pid $pid)"
}

cmd_restart() {
	need_dir "$@"
	load_ports
	cmd_stop "$DIR"
	if [[ -z ${CH_TCP_PORT:-} && -n $CH_TCP_PORT_CUR ]]; then
		export CH_TCP_PORT=$CH_TCP_PORT_CUR CH_HTTP_PORT=$CH_HTTP_PORT_CUR
	fi
	cmd_start "$DIR"
}

cmd_status() {
	need_dir "$@"
	local pid
	load_ports
	if ! pid=$(server_pid); then
		echo "not running ($DIR)"
		return 3
	fi
	if native_select1 "$CH_TCP_PORT_CUR" && http_select1 "$CH_HTTP_PORT_CUR"; then
		echo "running pid=$pid tcp=127.0.0.1:$CH_TCP_PORT_CUR http=127.0.0.1:$CH_HTTP_PORT_CUR ($DIR)"
		return 0
	fi
	echo "running pid=$pid but not answering SELECT 1 ($DIR)"
	return 1
}

cmd_client() {
	need_dir "$1"
	shift
	load_ports
	[[ -n $CH_TCP_PORT_CUR ]] || die "no $PORTSFILE; start the server first"
	exec "$CLIENT_BIN" --host 127.0.0.1 --port "$CH_TCP_PORT_CUR" "$@"
}

cmd_env() {
	need_dir "$@"
	[[ -f $PORTSFILE ]] || die "no $PORTSFILE; start the server first"
	cat "$PORTSFILE"
}

cmd_logs() {
	need_dir "$1"
	log_tail "${2:-50}" 2>&1
}

cmd_add_user() {
	[[ $# -ge 2 ]] || usage
	need_dir "$1"
	local name=$2 pass=${3:-}
	[[ $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "bad user name '$name'"
	mkdir -p "$DIR/users.d"
	cat >"$DIR/users.d/$name.xml.tmp" <<EOF
<?xml version="1.0"?>
<yandex>
    <users>
        <$name>
            <password>$(xml_escape "$pass")</password>
            <networks>
                <ip>127.0.0.1</ip>
                <ip>::1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </$name>
    </users>
</yandex>
EOF
	# Written under a name the server ignores, then renamed, so the config reloader
	# (polls every ~2s) never sees a half-written file.
	mv -f "$DIR/users.d/$name.xml.tmp" "$DIR/users.d/$name.xml"
	log "user $name written to $DIR/users.d/$name.xml (the server picks it up within ~2s)"
}

main() {
	[[ $# -ge 1 ]] || usage
	local cmd=$1
	shift
	case $cmd in
	install) cmd_install ;;
	start) CREATE_DIR=1 cmd_start "$@" ;;
	stop) cmd_stop "$@" ;;
	kill) cmd_kill "$@" ;;
	restart) CREATE_DIR=1 cmd_restart "$@" ;;
	status) cmd_status "$@" ;;
	client) [[ $# -ge 1 ]] || usage && cmd_client "$@" ;;
	env) cmd_env "$@" ;;
	logs) [[ $# -ge 1 ]] || usage && cmd_logs "$@" ;;
	add-user) CREATE_DIR=1 cmd_add_user "$@" ;;
	-h | --help | help) usage ;;
	*) usage ;;
	esac
}

main "$@"
