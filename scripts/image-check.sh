#!/usr/bin/env bash
# Proves the assumptions of the Dockerfile's runtime stage (gcr.io/distroless/base-debian12:nonroot)
# without a Docker engine: the binary ALONE (as /paybridge) in an empty root holding only the
# glibc libraries it links, /proc mounted, run as uid 65532 on a read-only root filesystem.
# Checks `/paybridge version` and `/paybridge migrate status`.
#
# Usage: scripts/image-check.sh BINARY
#   IMAGE_CHECK_DATABASE_URL  database for `migrate status` (default: a fresh throw-away database
#                             created through PG_ADMIN_URL and dropped at the end)
#   PG_ADMIN_URL              default postgres://postgres@127.0.0.1:5432/postgres
# Needs root (mount namespaces, chroot). The network namespace is shared, so 127.0.0.1 works.
set -euo pipefail

NONROOT_UID=65532

die() { echo "image-check: $*" >&2; exit 1; }

[[ $# -eq 1 ]] || { echo "usage: $0 BINARY" >&2; exit 2; }
BINARY=$(readlink -f "$1")
[[ -x "$BINARY" ]] || die "$1 is not an executable file"
[[ $(id -u) -eq 0 ]] || die "must run as root (it uses unshare -m and chroot)"
for tool in ldd unshare chroot mount psql; do command -v "$tool" >/dev/null || die "$tool is required"; done

PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
ROOTFS=$(mktemp -d /tmp/pb-image-root.XXXXXX)
CREATED_DB=""

cleanup() {
  # The mounts live in a private mount namespace and vanish with it; unmount anyway in case
  # an earlier step left one behind in ours (e.g. the script was interrupted mid-way).
  for m in "$ROOTFS/proc" "$ROOTFS"; do mountpoint -q "$m" 2>/dev/null && umount -l "$m" || true; done
  rm -rf --one-file-system "$ROOTFS"
  if [[ -n "$CREATED_DB" ]]; then
    psql "$PG_ADMIN_URL" -qtAc "DROP DATABASE IF EXISTS \"$CREATED_DB\" WITH (FORCE)" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT INT TERM

# 1. The root: the binary as /paybridge, the shared libraries ldd names, the dynamic loader,
#    and an empty /proc mount point. Nothing else (no shell, no /etc, no /tmp).
chmod 0755 "$ROOTFS" # mktemp makes it 0700: uid 65532 must be able to enter it
cp "$BINARY" "$ROOTFS/paybridge"
chmod 0555 "$ROOTFS/paybridge"
mkdir "$ROOTFS/proc"
libs=$(ldd "$BINARY" | grep -o '/[^ ]*' || true)
[[ -n "$libs" ]] || die "ldd found no libraries (a static binary would not need this check)"
for lib in $libs; do
  mkdir -p "$ROOTFS$(dirname "$lib")"
  cp -L "$lib" "$ROOTFS$lib"
done
echo "image-check: root holds /paybridge and $(wc -w <<<"$libs") libraries: $(tr '\n' ' ' <<<"$libs")"
unexpected=$(grep -v -E '/(libc|libpthread|libdl|libm|librt|ld-linux[^/]*)\.so' <<<"$libs" || true)
[[ -z "$unexpected" ]] || echo "image-check: note: links beyond glibc: $unexpected (distroless/base still has glibc only)"

# 2. A database for `migrate status`.
DB_URL=${IMAGE_CHECK_DATABASE_URL:-}
if [[ -z "$DB_URL" ]]; then
  CREATED_DB="pb_imagecheck_$(date +%s)_$$"
  psql "$PG_ADMIN_URL" -qtAc "CREATE DATABASE \"$CREATED_DB\"" >/dev/null || die "cannot create a database through PG_ADMIN_URL"
  base=${PG_ADMIN_URL%%\?*}
  DB_URL="${base%/*}/$CREATED_DB${PG_ADMIN_URL#"$base"}"
fi

# 3. Inside a private mount namespace: make the root read-only, mount /proc, run as nonroot
#    with an empty environment except what the image sets (PAYBRIDGE_ENV=production).
unshare --mount --propagation private -- /bin/bash -euo pipefail -s "$ROOTFS" "$NONROOT_UID" "$DB_URL" "$(command -v chroot)" <<'INNER'
root=$1 uid=$2 url=$3 chroot_bin=$4
mount --bind "$root" "$root"
mount -o remount,bind,ro "$root"
mount -t proc proc "$root/proc"
if touch "$root/.write-probe" 2>/dev/null; then echo "image-check: the root is writable" >&2; exit 1; fi
run() {
  env -i PAYBRIDGE_ENV=production DATABASE_URL="$url" "$chroot_bin" --userspec="$uid:$uid" "$root" /paybridge "$@"
}
echo "image-check: /paybridge version (uid $uid, read-only root)"
out=$(run version) || { echo "image-check: version failed" >&2; exit 1; }
echo "$out"
grep -q '^paybridge ' <<<"$out" || { echo "image-check: unexpected version output" >&2; exit 1; }
echo "image-check: /paybridge migrate status"
out=$(run migrate status) || { echo "image-check: migrate status failed" >&2; exit 1; }
echo "$out"
grep -q '^version ' <<<"$out" || { echo "image-check: unexpected status output" >&2; exit 1; }
INNER
echo "image-check: OK"
