#!/usr/bin/env bash
# Installs the Debian packages Xenon needs, idempotently:
#   present -> skipped; root with apt -> installed; otherwise a clear message naming what is missing.
# Each entry is "command:debian-package".
set -euo pipefail
need=(
  "clang:clang"
  "ld.lld:lld"
  "qemu-riscv32:qemu-user"
  "dtc:device-tree-compiler"
  "xenstore-read:xenstore-utils"
)
missing=()
for entry in "${need[@]}"; do
  cmd=${entry%%:*}; pkg=${entry##*:}
  command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "system-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  exit 0
fi
echo "system-deps: missing Debian packages: ${missing[*]}" >&2
echo "system-deps: install them (as root: apt-get install ${missing[*]}) and run again." >&2
exit 1
