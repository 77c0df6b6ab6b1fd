#!/usr/bin/env bash
# Embedded modern ClickHouse for the test tier: chdb's libchdb.so, taken from
# the npm package @chdb/lib-linux-x64-gnu (no server, ~560 MB unpacked), kept
# outside the repository under ~/.cache/logpipe-chdb/<version>/package/.
# internal/chdbtest opens it (its Version constant must match CHDB_VERSION).
#
#   chdb.sh install   npm pack + extract when missing (make test runs it; npm itself
#                     comes from apt-get when missing and run as root)
#   chdb.sh path      print the libchdb.so path tests use
#
# Environment:
#   LOGPIPE_CHDB_LIB  use this libchdb.so instead (install then does nothing);
#   CHDB_LIB_PATH     chdb-go's variable, honoured the same way (as internal/chdbtest does)
#   CHDB_VERSION      package version (default below)
#   CHDB_CACHE        cache directory (default ~/.cache/logpipe-chdb)
set -euo pipefail

VERSION=${CHDB_VERSION:-26.5.3}
# The registry's dist.integrity of that version (npm view @chdb/lib-linux-x64-gnu@26.5.3 dist.integrity):
# a cached or downloaded tarball that does not match is refused. Change both together.
INTEGRITY_26_5_3=sha512-fPrLmRt5Moor9yGz4mazbrNje4t7X9KB2mTGkXFWRxRBs2iKy8yh6jx11xsa0Qr3iDFMU/yHqd+bVdYJXu3QaQ==
CACHE=${CHDB_CACHE:-$HOME/.cache/logpipe-chdb}
PKG=@chdb/lib-linux-x64-gnu
TGZ=$CACHE/chdb-lib-linux-x64-gnu-$VERSION.tgz
LIB=$CACHE/$VERSION/package/libchdb.so

OWN=${LOGPIPE_CHDB_LIB:-${CHDB_LIB_PATH:-}}

die() { echo "chdb.sh: $*" >&2; exit 1; }

cmd_path() {
	if [[ -n $OWN ]]; then echo "$OWN"; else echo "$LIB"; fi
}

cmd_install() {
	if [[ -n $OWN ]]; then
		[[ -f $OWN ]] || die "$OWN (LOGPIPE_CHDB_LIB or CHDB_LIB_PATH) does not exist"
		return 0
	fi
	[[ -f $LIB ]] && return 0
	[[ $(uname -s)-$(uname -m) == Linux-x86_64 ]] || die "only linux x86_64 is packaged here; set LOGPIPE_CHDB_LIB to a libchdb.so"
	mkdir -p "$CACHE"
	if [[ ! -f $TGZ ]]; then
		if ! command -v npm >/dev/null && command -v apt-get >/dev/null && [[ $(id -u) == 0 ]]; then
			echo "chdb.sh: installing npm with apt-get (to fetch $PKG)" >&2
			apt-get update -q >/dev/null
			DEBIAN_FRONTEND=noninteractive apt-get install -y -q npm >/dev/null
		fi
		command -v npm >/dev/null || die "npm is needed to fetch $PKG@$VERSION (apt-get install npm), or set LOGPIPE_CHDB_LIB"
		echo "chdb.sh: npm pack $PKG@$VERSION (about 150 MB) into $CACHE" >&2
		local tmp
		tmp=$(mktemp -d "$CACHE/pack.XXXXXX")
		(cd "$tmp" && npm pack --silent "$PKG@$VERSION" >/dev/null) || { rm -rf "$tmp"; die "npm pack $PKG@$VERSION failed"; }
		mv "$tmp"/*.tgz "$TGZ"
		rm -rf "$tmp"
	fi
	if [[ $VERSION == 26.5.3 ]]; then
		local sum
		sum=sha512-$(python3 -c 'import base64, hashlib, sys
h = hashlib.sha512()
with open(sys.argv[1], "rb") as f:
    for b in iter(lambda: f.read(1 << 20), b""):
        h.update(b)
print(base64.b64encode(h.digest()).decode())' "$TGZ")
		[[ $sum == "$INTEGRITY_26_5_3" ]] || die "$TGZ does not match the registry's integrity for $VERSION (delete it to download again)"
	fi
	# Extract beside the target and rename, so an interrupted install never
	# leaves a half-written library where tests look.
	local tmp
	tmp=$(mktemp -d "$CACHE/extract.XXXXXX")
	chmod 755 "$tmp"
	tar -xzf "$TGZ" -C "$tmp" || { rm -rf "$tmp"; die "extracting $TGZ failed (delete it to download again)"; }
	[[ -f $tmp/package/libchdb.so ]] || { rm -rf "$tmp"; die "$TGZ holds no package/libchdb.so"; }
	rm -rf "$CACHE/$VERSION"
	mv "$tmp" "$CACHE/$VERSION"
	echo "chdb.sh: installed $LIB" >&2
}

case ${1:-} in
install) cmd_install ;;
path) cmd_path ;;
*) die "usage: chdb.sh install|path" ;;
esac
