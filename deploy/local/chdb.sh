#!/usr/bin/env bash
# Embedded modern ClickHouse for the test tier: chdb's libchdb.so, taken from
# the npm package @chdb/lib-linux-x64-gnu (no server, ~560 MB unpacked), kept
# outside the repository under ~/.cache/logpipe-chdb/<version>/package/.
# internal/chdbtest opens it (its Version constant must match CHDB_VERSION).
#
#   chdb.sh install   npm pack + extract when missing (make test runs it)
#   chdb.sh path      print the libchdb.so path tests use
#
# Environment:
#   LOGPIPE_CHDB_LIB  use this libchdb.so instead (install then does nothing)
#   CHDB_VERSION      package version (default below)
#   CHDB_CACHE        cache directory (default ~/.cache/logpipe-chdb)
set -euo pipefail

VERSION=${CHDB_VERSION:-26.5.3}
CACHE=${CHDB_CACHE:-$HOME/.cache/logpipe-chdb}
PKG=@chdb/lib-linux-x64-gnu
TGZ=$CACHE/chdb-lib-linux-x64-gnu-$VERSION.tgz
LIB=$CACHE/$VERSION/package/libchdb.so

die() { echo "chdb.sh: $*" >&2; exit 1; }

cmd_path() {
	if [[ -n ${LOGPIPE_CHDB_LIB:-} ]]; then echo "$LOGPIPE_CHDB_LIB"; else echo "$LIB"; fi
}

cmd_install() {
	if [[ -n ${LOGPIPE_CHDB_LIB:-} ]]; then
		[[ -f $LOGPIPE_CHDB_LIB ]] || die "LOGPIPE_CHDB_LIB=$LOGPIPE_CHDB_LIB does not exist"
		return 0
	fi
	[[ -f $LIB ]] && return 0
	[[ $(uname -s)-$(uname -m) == Linux-x86_64 ]] || die "only linux x86_64 is packaged here; set LOGPIPE_CHDB_LIB to a libchdb.so"
	mkdir -p "$CACHE"
	if [[ ! -f $TGZ ]]; then
		command -v npm >/dev/null || die "npm is needed to fetch $PKG@$VERSION (apt-get install npm), or set LOGPIPE_CHDB_LIB"
		echo "chdb.sh: npm pack $PKG@$VERSION (about 150 MB) into $CACHE" >&2
		local tmp
		tmp=$(mktemp -d "$CACHE/pack.XXXXXX")
		(cd "$tmp" && npm pack --silent "$PKG@$VERSION" >/dev/null) || { rm -rf "$tmp"; die "npm pack $PKG@$VERSION failed"; }
		mv "$tmp"/*.tgz "$TGZ"
		rm -rf "$tmp"
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
