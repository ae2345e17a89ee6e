#!/usr/bin/env bash
# Stage a minimal root filesystem for the FROM-scratch kvs image.
#
#   docker/make-rootfs.sh BINARY CONFIG OUTDIR [PROBE [KVSCTL]]
#
# OUTDIR receives: /usr/local/bin/kvs-server, /usr/local/bin/kvs-probe (PROBE, if given: the
# health check, docker/probe.cc), /usr/local/bin/kvsctl (KVSCTL, if given: the operators'
# command line, app/kvsctl.cc, for `docker exec nodeN kvsctl status`), every shared library `ldd` lists for either (at the path
# ldd resolved, so RUNPATHs keep working), the ELF interpreter, /config/kvs.properties (if
# CONFIG exists), a small /etc, /tmp and the empty data directory /data (the image's
# KVS_STORAGE_DIR). No registry is involved: everything comes from this machine.
set -euo pipefail

die() { printf 'make-rootfs.sh: error: %s\n' "$*" >&2; exit 1; }

(($# >= 3 && $# <= 5)) || die "usage: $0 BINARY CONFIG OUTDIR [PROBE [KVSCTL]]"
BIN="$1" CONFIG="$2" OUT="$3" PROBE="${4:-}" KVSCTL="${5:-}"
[[ -x "$BIN" ]] || die "binary $BIN not found or not executable"
[[ -z "$PROBE" || -x "$PROBE" ]] || die "probe $PROBE not found or not executable"
[[ -z "$KVSCTL" || -x "$KVSCTL" ]] || die "kvsctl $KVSCTL not found or not executable"

# Copy a host file (following symlinks) to the same absolute path under OUT.
copy_in() {
  local src="$1" dst="$OUT$1"
  [[ -f "$dst" ]] && return 0
  mkdir -p "$(dirname "$dst")"
  cp -L "$src" "$dst"
}

# Every library the dynamic loader would map at start-up of binary $1. ldd prints either
# "name => /path (addr)", "/path (addr)" (the interpreter) or "name (addr)" (vdso).
copy_libraries() {
  local bin="$1" out line path
  out="$(ldd "$bin" 2>&1)" || {
    # Static binaries make ldd exit non-zero with "not a dynamic executable".
    grep -q 'not a dynamic executable\|statically linked' <<<"$out" && return 0
    die "ldd $bin failed: $out"
  }
  if grep -q 'not found' <<<"$out"; then
    die "unresolved libraries: $(grep 'not found' <<<"$out" | tr -s ' \t\n' ' ')"
  fi
  while read -r line; do
    if [[ $line =~ =\>\ (/[^ ]+) ]]; then path="${BASH_REMATCH[1]}"
    elif [[ $line =~ ^(/[^ ]+) ]]; then path="${BASH_REMATCH[1]}"
    else continue
    fi
    copy_in "$path"
  done <<<"$out"
}

# The interpreter named in PT_INTERP of binary $1 must exist at exactly that path, or exec
# fails with a misleading "no such file or directory".
copy_interpreter() {
  local interp
  interp="$(readelf -l "$1" | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')"
  [[ -z "$interp" ]] || copy_in "$interp"
}

# glibc dlopen()s libgcc_s for thread cancellation/unwinding; ldd does not list it when the
# binary does not link it directly, and its absence aborts the process at that moment.
copy_dlopened() {
  local f
  for f in /lib/x86_64-linux-gnu/libgcc_s.so.1 /usr/lib/x86_64-linux-gnu/libgcc_s.so.1; do
    if [[ -f $f ]]; then
      [[ -n "$(find "$OUT" -name libgcc_s.so.1 -print -quit)" ]] || copy_in "$f"
      break
    fi
  done
}

# A loader cache covering every directory we filled, so libraries outside the loader's
# default directories (e.g. /usr/local/lib) are found too. Best effort: needs root (chroot).
write_loader_cache() {
  find "$OUT" -name '*.so*' -type f -printf '%h\n' | sed "s#^$OUT##" | sort -u >"$OUT/etc/ld.so.conf"
  ldconfig -r "$OUT" 2>/dev/null || echo "make-rootfs.sh: note: ldconfig -r failed; relying on default library paths" >&2
}

write_etc() {
  mkdir -p "$OUT/etc" "$OUT/tmp"
  chmod 1777 "$OUT/tmp"
  # Docker bind-mounts /etc/hosts and /etc/resolv.conf; tell glibc to consult them.
  printf 'hosts: files dns\n' >"$OUT/etc/nsswitch.conf"
  printf 'root:x:0:0:root:/:/nonexistent\nnobody:x:65534:65534:nobody:/nonexistent:/nonexistent\n' >"$OUT/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$OUT/etc/group"
}

# The default data directory (Dockerfile: ENV KVS_STORAGE_DIR=/data), empty. It must exist in
# the image: with no volume mounted the server writes into the container layer here, and a
# fresh named volume mounted at /data is seeded from it (owner root, mode 0755; the server
# runs as root). COPY keeps empty directories and gives them to root.
make_data_dir() {
  mkdir -p "$OUT/data"
  chmod 0755 "$OUT/data"
}

main() {
  rm -rf "$OUT"
  mkdir -p "$OUT/usr/local/bin"
  cp "$BIN" "$OUT/usr/local/bin/kvs-server"
  copy_libraries "$BIN"
  copy_interpreter "$BIN"
  if [[ -n "$PROBE" ]]; then
    cp "$PROBE" "$OUT/usr/local/bin/kvs-probe"
    copy_libraries "$PROBE"
    copy_interpreter "$PROBE"
  fi
  if [[ -n "$KVSCTL" ]]; then
    cp "$KVSCTL" "$OUT/usr/local/bin/kvsctl"
    copy_libraries "$KVSCTL"
    copy_interpreter "$KVSCTL"
  fi
  copy_dlopened
  write_etc
  make_data_dir
  write_loader_cache
  if [[ -f "$CONFIG" ]]; then
    mkdir -p "$OUT/config"
    cp "$CONFIG" "$OUT/config/kvs.properties"
  else
    echo "make-rootfs.sh: warning: $CONFIG not found; the image will use built-in defaults" >&2
  fi
}

main
