#!/usr/bin/env bash
# Builds a PostgreSQL 15 Docker image from the PostgreSQL binaries installed on
# this host, without pulling anything. The image answers to the same knobs as
# the official postgres image that internal/pgtest's docker provider relies on:
# POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB, POSTGRES_HOST_AUTH_METHOD,
# PGDATA, a command such as `postgres -c fsync=off`, and the log line
# "database system is ready to accept connections" printed twice (once by the
# temporary init server, once by the real one).
#
# Usage: .ci/pg-image.sh [TAG]        (default TAG: deploydb/postgres:15-offline)
# Then:  DEPLOYDB_PG_PROVIDER=docker DEPLOYDB_PG_IMAGE=TAG go test ./...
#
# Needs: a running Docker engine, and Debian's postgresql-15 on the host.
# Running it again rebuilds the image from scratch and retags it.
set -euo pipefail

tag=${1:-deploydb/postgres:15-offline}
pgver=15
pglib=/usr/lib/postgresql/$pgver
pgshare=/usr/share/postgresql/$pgver
# The image's postgres user; only the numbers matter inside the image.
pg_uid=999
pg_gid=999

die() { echo "pg-image: $*" >&2; exit 1; }

[[ -x $pglib/bin/postgres ]] || die "$pglib/bin/postgres not found: install postgresql-$pgver"
[[ -d $pgshare ]] || die "$pgshare not found: install postgresql-$pgver"
command -v docker >/dev/null || die "docker CLI not found"
docker version --format '{{.Server.Version}}' >/dev/null 2>&1 || die "no Docker engine answers (start dockerd)"
command -v ldd >/dev/null || die "ldd not found"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root"

# Mirror the host's top-level layout (merged /usr or not) so that library
# paths reported by ldd are valid inside the image as they are.
for d in bin sbin lib lib64; do
	if [[ -L /$d ]]; then
		target=$(readlink "/$d")
		target=${target#/}
		mkdir -p "$root/$target"
		ln -s "$target" "$root/$d"
	elif [[ -d /$d ]]; then
		mkdir -p "$root/$d"
	fi
done

# copy_path SRC: copies SRC (dereferenced) to the same path under the rootfs.
copy_path() {
	local src=$1
	mkdir -p "$root$(dirname "$src")"
	cp -L "$src" "$root$src"
}

# PostgreSQL itself. The LLVM JIT provider is left out (it would pull in a
# very large libLLVM); without it the server simply runs with JIT unavailable.
mkdir -p "$root/usr/lib/postgresql" "$root/usr/share/postgresql"
cp -a "$pglib" "$root/usr/lib/postgresql/"
rm -rf "$root$pglib/lib/llvmjit.so" "$root$pglib/lib/llvmjit_types.bc" "$root$pglib/lib/bitcode"
cp -a "$pgshare" "$root/usr/share/postgresql/"

# Shell for the entrypoint.
sh_path=$(readlink -f /bin/sh)
[[ $(basename "$sh_path") == dash ]] || sh_path=$(command -v dash || true)
[[ -n $sh_path && -x $sh_path ]] || die "dash not found"
copy_path "$sh_path"
if [[ $sh_path != /bin/sh && $sh_path != /usr/bin/sh ]]; then
	ln -sf "$(basename "$sh_path")" "$root$(dirname "$sh_path")/sh"
	[[ -e $root/bin/sh ]] || ln -s "$sh_path" "$root/bin/sh"
fi

# initdb runs `locale -a` to import the system collations; ship it if the
# host has it.
extra_tools=()
if locale_path=$(command -v locale); then
	locale_path=$(readlink -f "$locale_path")
	copy_path "$locale_path"
	extra_tools+=("$locale_path")
fi

# Shared libraries (and the dynamic loader) of every binary and module copied.
libs=$work/libs.txt
: >"$libs"
while IFS= read -r -d '' f; do
	# ldd prints "name => /path (addr)" or "/path (addr)" for the loader.
	ldd "$f" 2>/dev/null | awk '
		$2 == "=>" && $3 ~ /^\// { print $3 }
		$1 ~ /^\// { print $1 }' >>"$libs" || true
done < <(find "$root$pglib/bin" "$root$pglib/lib" -type f \( -perm -u+x -o -name '*.so' \) -print0; printf '%s\0' "$sh_path" "${extra_tools[@]}")
sort -u "$libs" | while IFS= read -r lib; do
	[[ -e $root$lib ]] || copy_path "$lib"
done
grep -q . "$libs" || die "ldd found no shared libraries: is this a dynamically linked PostgreSQL?"

# Locale and time zone data.
[[ -d /usr/lib/locale/C.utf8 ]] || die "/usr/lib/locale/C.utf8 not found"
mkdir -p "$root/usr/lib/locale"
cp -a /usr/lib/locale/C.utf8 "$root/usr/lib/locale/"
if [[ -d /usr/share/zoneinfo ]]; then
	mkdir -p "$root/usr/share"
	cp -a /usr/share/zoneinfo "$root/usr/share/"
fi

# Users, name service, writable directories.
mkdir -p "$root/etc" "$root/tmp" "$root/var/run/postgresql" "$root/var/lib/postgresql/data" \
	"$root/docker-entrypoint-initdb.d" "$root/usr/local/bin" "$root/dev" "$root/proc" "$root/sys"
cat >"$root/etc/passwd" <<EOF
root:x:0:0:root:/root:/bin/sh
postgres:x:$pg_uid:$pg_gid:PostgreSQL:/var/lib/postgresql:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/sh
EOF
cat >"$root/etc/group" <<EOF
root:x:0:
postgres:x:$pg_gid:
nogroup:x:65534:
EOF
printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$root/etc/nsswitch.conf"
printf '127.0.0.1 localhost\n::1 localhost\n' >"$root/etc/hosts"
chmod 1777 "$root/tmp"
chown -R "$pg_uid:$pg_gid" "$root/var/run/postgresql" "$root/var/lib/postgresql"
chmod 0775 "$root/var/run/postgresql"
chmod 0700 "$root/var/lib/postgresql/data"

# The entrypoint uses only shell built-ins and the PostgreSQL binaries.
cat >"$root/usr/local/bin/docker-entrypoint.sh" <<'ENTRYPOINT'
#!/bin/sh
# Starts PostgreSQL the way the official postgres image does, for the options
# tests use: POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB,
# POSTGRES_HOST_AUTH_METHOD, PGDATA, POSTGRES_INITDB_ARGS and
# /docker-entrypoint-initdb.d/*.sql|*.sh.
set -eu

log() { echo "entrypoint: $*" >&2; }

# `docker run IMAGE -c x=y` and `docker run IMAGE postgres -c x=y` both start
# the server; any other command is run as given.
case "${1:-postgres}" in
-*) set -- postgres "$@" ;;
esac
if [ "$#" -eq 0 ]; then
	set -- postgres
fi
if [ "$1" != postgres ]; then
	exec "$@"
fi
shift

PGDATA=${PGDATA:-/var/lib/postgresql/data}
POSTGRES_USER=${POSTGRES_USER:-postgres}
POSTGRES_DB=${POSTGRES_DB:-$POSTGRES_USER}
POSTGRES_PASSWORD=${POSTGRES_PASSWORD:-}
POSTGRES_HOST_AUTH_METHOD=${POSTGRES_HOST_AUTH_METHOD:-}
export PGDATA

if [ ! -s "$PGDATA/PG_VERSION" ]; then
	if [ -z "$POSTGRES_PASSWORD" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != trust ]; then
		log "POSTGRES_PASSWORD is empty; set it, or set POSTGRES_HOST_AUTH_METHOD=trust"
		exit 1
	fi
	auth=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}

	if [ -n "$POSTGRES_PASSWORD" ]; then
		# The password travels on a pipe, never through a file.
		# shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of words.
		initdb -D "$PGDATA" -U "$POSTGRES_USER" -E UTF8 --locale=C.UTF-8 \
			--auth-local=trust --auth-host="$auth" --pwfile=/dev/stdin \
			${POSTGRES_INITDB_ARGS:-} <<EOF
$POSTGRES_PASSWORD
EOF
	else
		# shellcheck disable=SC2086
		initdb -D "$PGDATA" -U "$POSTGRES_USER" -E UTF8 --locale=C.UTF-8 \
			--auth-local=trust --auth-host="$auth" ${POSTGRES_INITDB_ARGS:-}
	fi
	{
		echo
		echo "listen_addresses = '*'"
		echo "unix_socket_directories = '/var/run/postgresql'"
	} >>"$PGDATA/postgresql.conf"
	{
		echo "host all all 0.0.0.0/0 $auth"
		echo "host all all ::/0 $auth"
	} >>"$PGDATA/pg_hba.conf"

	# A temporary server reachable only through the socket, to create the
	# database and run init scripts.
	pg_ctl -D "$PGDATA" -w -t 60 \
		-o "-c listen_addresses='' -c unix_socket_directories=/var/run/postgresql" start

	if [ "$POSTGRES_DB" != postgres ]; then
		psql -v ON_ERROR_STOP=1 -q -h /var/run/postgresql -U "$POSTGRES_USER" -d postgres \
			-v db="$POSTGRES_DB" <<'EOF'
CREATE DATABASE :"db";
EOF
	fi
	for f in /docker-entrypoint-initdb.d/*; do
		[ -e "$f" ] || continue
		case "$f" in
		*.sh)
			log "running $f"
			. "$f"
			;;
		*.sql)
			log "running $f"
			psql -v ON_ERROR_STOP=1 -h /var/run/postgresql -U "$POSTGRES_USER" -d "$POSTGRES_DB" -f "$f"
			;;
		*) log "ignoring $f" ;;
		esac
	done

	pg_ctl -D "$PGDATA" -m fast -w -t 60 stop
	log "PostgreSQL init process complete; ready for start up."
fi

exec postgres -D "$PGDATA" "$@"
ENTRYPOINT
chmod 0755 "$root/usr/local/bin/docker-entrypoint.sh"

old_id=$(docker image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)

# Sorted, numeric-owner tar so ownership (postgres = $pg_uid) survives as is.
tar -C "$root" --numeric-owner --sort=name -c . |
	docker import \
		--change 'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]' \
		--change 'CMD ["postgres"]' \
		--change "ENV PATH=$pglib/bin:/usr/local/bin:/usr/bin:/bin" \
		--change 'ENV LANG=C.UTF-8' \
		--change 'ENV PGDATA=/var/lib/postgresql/data' \
		--change 'USER postgres' \
		--change 'WORKDIR /var/lib/postgresql' \
		--change 'EXPOSE 5432' \
		--message "PostgreSQL $pgver from host binaries" \
		- "$tag" >/dev/null

new_id=$(docker image inspect --format '{{.Id}}' "$tag")
# A rebuild leaves the previous image untagged; remove it unless something uses it.
if [[ -n $old_id && $old_id != "$new_id" ]]; then
	docker image rm "$old_id" >/dev/null 2>&1 || true
fi
size=$(docker image inspect --format '{{.Size}}' "$tag")
echo "pg-image: built $tag ($new_id, $((size / 1024 / 1024)) MiB)"
