#!/usr/bin/env bash
# Makes QEMU's own python QMP client (`qemu.qmp`, pure python, stdlib only) importable without
# PyPI, for test/lib/qmp/python-qmp.test.ts. It ships in Debian's `qemu` source package under
# python/qemu/qmp: this fetches that source package with apt through a PRIVATE apt configuration
# (deb-src entries for the system's own Debian suites and mirror, a private lists directory — the
# system's apt configuration is not changed), extracts only python/qemu/qmp from the upstream
# tarball, and copies it to
#   ${XDG_CACHE_HOME:-$HOME/.cache}/virtio-net-model/qemu-python/qemu/qmp
# The fetched code is never part of this repository.
#
# Idempotent: once the cache holds the client it does nothing. The last line printed on stdout is
#   PYTHONPATH=<dir>
# (progress goes to stderr). Exits non-zero with a reason when the client cannot be had (no apt,
# no Debian mirror reachable, no deb822/one-line Debian source to derive deb-src entries from).
#
# Cost measured on a Debian 12 machine (2 cores, bookworm, qemu 1:7.2+dfsg-7+deb12u18): the deb-src
# indexes ~20 MiB plus the source package (dsc, orig and debian tarballs) ~22 MiB — about 42 MiB,
# 2-3 s on a fast mirror (a minute or so at 1 MB/s). Both are deleted afterwards; the cache keeps
# ~180 KB of python. Without network it fails in seconds with the mirror errors.
set -euo pipefail

cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/virtio-net-model"
pyroot="$cache_root/qemu-python"
target="$pyroot/qemu/qmp"
stamp="$pyroot/.source"

log() { echo "setup-qemu-qmp: $*" >&2; }

if [ -f "$stamp" ] && [ -f "$target/__init__.py" ] && [ -f "$target/legacy.py" ]; then
  log "already present ($(cat "$stamp")) in $target"
  echo "PYTHONPATH=$pyroot"
  exit 0
fi

mkdir -p "$cache_root" 2>/dev/null && [ -w "$cache_root" ] || { log "cannot write the cache directory $cache_root"; exit 1; }

for tool in apt-get tar; do
  command -v "$tool" >/dev/null 2>&1 || { log "needs $tool, which is not installed"; exit 1; }
done

work="$(mktemp -d "${TMPDIR:-/tmp}/setup-qemu-qmp.XXXXXX")"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/archives/partial" "$work/src"

# --- deb-src entries derived from the system's enabled Debian sources (same mirror, same suites).
srcfile="$work/deb-src.sources"
: >"$srcfile"
. /etc/os-release
codename="${VERSION_CODENAME:-}"
[ -n "$codename" ] || { log "cannot tell the Debian suite (no VERSION_CODENAME in /etc/os-release)"; exit 1; }

# deb822 files: copy each stanza whose Types has `deb`, as Types: deb-src.
for f in /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] || continue
  awk -v codename="$codename" '
    function flush() {
      if (stanza != "" && isdeb && hassuite) print stanza "\n"
      stanza = ""; isdeb = 0; hassuite = 0
    }
    /^[[:space:]]*$/ { flush(); next }
    /^[[:space:]]*#/ { next }
    /^Types:/ { isdeb = ($0 ~ /[[:space:]]deb([[:space:]]|$)/); stanza = stanza "Types: deb-src\n"; next }
    /^Suites:/ { if (index($0, codename) > 0) hassuite = 1 }
    /^Enabled:[[:space:]]*no/ { isdeb = 0 }
    { stanza = stanza $0 "\n" }
    END { flush() }
  ' "$f" >>"$srcfile"
done
# One-line sources: `deb [opts] URI suite comps` -> deb822 stanza.
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
  [ -f "$f" ] || continue
  awk -v codename="$codename" '
    $1 == "deb" {
      i = 2
      opts = ""
      if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) { opts = opts " " $i; i++ }; opts = opts " " $i; i++ }
      uri = $i; suite = $(i + 1); comps = ""
      for (j = i + 2; j <= NF; j++) comps = comps " " $j
      if (index(suite, codename) != 1) next
      signed = ""
      if (match(opts, /signed-by=[^] ]+/)) signed = "Signed-By: " substr(opts, RSTART + 10, RLENGTH - 10) "\n"
      printf "Types: deb-src\nURIs: %s\nSuites: %s\nComponents:%s\n%s\n", uri, suite, comps, signed
    }
  ' "$f" >>"$srcfile"
done
if ! grep -q '^Types: deb-src' "$srcfile"; then
  log "no enabled Debian 'deb' source for suite $codename found under /etc/apt to derive deb-src entries from"
  exit 1
fi

apt_opts=(
  -o "Dir::Etc::SourceList=$srcfile"
  -o "Dir::Etc::SourceParts=$work/no-parts"
  -o "Dir::State::Lists=$work/lists"
  -o "Dir::Cache::Archives=$work/archives"
  -o "Dir::Cache::pkgcache="
  -o "Dir::Cache::srcpkgcache="
  -o "Debug::NoLocking=1"
  -o "APT::Get::List-Cleanup=0"
  -o "APT::Sandbox::User=$(id -un)"
  -o "Acquire::Languages=none"
  -o "Acquire::IndexTargets::deb::Packages::DefaultEnabled=false"
)
mkdir -p "$work/no-parts"

start=$(date +%s)
log "fetching the Debian source index for $codename (deb-src, private apt lists in $work)"
if ! apt-get -q "${apt_opts[@]}" update >"$work/update.log" 2>&1; then
  log "apt-get update (deb-src) failed:"; tail -n 5 "$work/update.log" >&2; exit 1
fi
if ! ls "$work/lists"/*Sources* >/dev/null 2>&1; then
  log "could not fetch any deb-src index (is a Debian mirror reachable?):"
  grep '^\(Err\|W:\|E:\)' "$work/update.log" | head -n 5 >&2
  exit 1
fi
if grep -q '^Err' "$work/update.log"; then
  log "some indexes failed (going on with the others):"; grep '^Err' "$work/update.log" | head -n 3 >&2
fi

log "downloading the qemu source package (download only, no build dependencies)"
if ! (cd "$work/src" && apt-get -q "${apt_opts[@]}" source --download-only qemu >"$work/source.log" 2>&1); then
  log "apt-get source qemu failed:"; tail -n 5 "$work/source.log" >&2; exit 1
fi
dsc="$(ls "$work/src"/qemu_*.dsc 2>/dev/null | head -n 1)"
orig="$(ls "$work/src"/qemu_*.orig.tar.* 2>/dev/null | head -n 1)"
[ -n "$orig" ] || { log "no qemu orig tarball in the downloaded source package"; exit 1; }
bytes=$(du -cb "$work/src"/qemu_* | tail -n 1 | cut -f1)
index_bytes=$(du -sb "$work/lists" | cut -f1)
log "downloaded $(basename "$dsc"): source index $((index_bytes / 1048576)) MiB + package $((bytes / 1048576)) MiB in $(( $(date +%s) - start )) s"

# Only python/qemu/qmp: the tarball's top directory is qemu-<version>/.
tar -xf "$orig" -C "$work" --wildcards --no-anchored 'python/qemu/qmp/*'
found="$(find "$work" -path '*/python/qemu/qmp/__init__.py' -not -path "$work/src/*" | head -n 1)"
[ -n "$found" ] || { log "python/qemu/qmp is not in $(basename "$orig")"; exit 1; }
srcdir="$(dirname "$found")"

rm -rf "$target.tmp"
mkdir -p "$target.tmp"
cp -R "$srcdir"/. "$target.tmp"/
# `qemu` is an implicit namespace package upstream (no qemu/__init__.py), and stays one here.
rm -rf "$target"
mv "$target.tmp" "$target"
basename "$dsc" .dsc >"$stamp"
log "installed $(cat "$stamp"):python/qemu/qmp into $target in $(( $(date +%s) - start )) s"
echo "PYTHONPATH=$pyroot"
