#!/bin/sh
# meson install into a DESTDIR, then the installed binary as a user runs
# it, away from the source tree: it finds its assets under the DESTDIR
# (never the tree), --help, make-dataset, a 5-step distill on the shipped
# teacher (its run in $XDG_DATA_HOME, not next to the binary), an export;
# the desktop file and the AppStream metainfo pass their validators.
# Usage: install.sh BUILD_DIR
set -u
build=$1
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kd-install-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail=0
no() { echo "FAIL: $*"; fail=1; }
for t in desktop-file-validate appstreamcli; do
  command -v $t >/dev/null 2>&1 || { echo "SKIP: $t is not installed"; exit 77; }
done
meson install -C "$build" --no-rebuild --quiet --destdir "$tmp/dest" >"$tmp/install.log" 2>&1 ||
  { cat "$tmp/install.log"; echo "FAIL: meson install"; exit 1; }
kd=$(find "$tmp/dest" -path '*/bin/kdscope' -type f | head -1)
[ -x "$kd" ] || { echo "FAIL: no installed bin/kdscope"; exit 1; }
share=$(cd "$(dirname "$kd")/../share" && pwd)
for f in kdscope/configs/distill.json kdscope/configs/teacher.json kdscope/teacher.safetensors kdscope/style.css \
         kdscope/configs/teacher-frcnn.json kdscope/teacher-frcnn.safetensors kdscope/python/kdscope_hook.py \
         kdscope/configs/teacher-gfl.json kdscope/teacher-gfl.safetensors \
         applications/io.github.kdscope.Kdscope.desktop metainfo/io.github.kdscope.Kdscope.metainfo.xml \
         icons/hicolor/scalable/apps/io.github.kdscope.Kdscope.svg \
         icons/hicolor/symbolic/apps/io.github.kdscope.Kdscope-symbolic.svg; do
  [ -s "$share/$f" ] || no "not installed: share/$f"
done
for s in 16 22 24 32 48 64 128 256 512; do
  [ -s "$share/icons/hicolor/${s}x$s/apps/io.github.kdscope.Kdscope.png" ] || no "no ${s}x$s icon"
done
desktop-file-validate "$share/applications/io.github.kdscope.Kdscope.desktop" || no "desktop-file-validate"
appstreamcli validate --no-net "$share/metainfo/io.github.kdscope.Kdscope.metainfo.xml" >"$tmp/as.log" 2>&1 ||
  { cat "$tmp/as.log"; no "appstreamcli validate"; }
# A user's session: a home of its own, started elsewhere than the tree.
mkdir -p "$tmp/home" "$tmp/cwd"
cd "$tmp/cwd"
u() { env -u KDSCOPE_ASSETS HOME="$tmp/home" XDG_DATA_HOME="$tmp/home/data" "$kd" "$@"; }
u --version >"$tmp/version" 2>&1 || no "--version exited $?"
grep -q "assets: $share/kdscope (installed)" "$tmp/version" || no "--version: $(cat "$tmp/version")"
grep -q "runs without --out: $tmp/home/data/kdscope/runs" "$tmp/version" || no "runs root: $(cat "$tmp/version")"
u --help >"$tmp/help" 2>&1 && grep -q "distill" "$tmp/help" || no "--help"
u make-dataset --out "$tmp/fd" --train 20 --val 5 --threads 1 >"$tmp/md.log" 2>&1 || no "make-dataset: $(tail -3 "$tmp/md.log")"
u distill --data "$tmp/fd" --steps 5 --quiet --set train.threads=1 --set train.eval_every=0 --set probe.budget=0 \
  >"$tmp/distill.log" 2>&1 || no "distill: $(tail -3 "$tmp/distill.log")"
run=$(ls -d "$tmp/home/data/kdscope/runs/"*/ 2>/dev/null | head -1)
[ -n "$run" ] && [ -s "$run/metrics.jsonl" ] || no "the distill run is not in XDG_DATA_HOME/kdscope/runs"
[ -z "$(ls -A "$tmp/cwd")" ] || no "the run wrote into the working directory: $(ls -A "$tmp/cwd")"
grep -q "$share/kdscope/configs/teacher.json" "$run/config.json" 2>/dev/null || no "the run's teacher is not the installed one"
if [ -n "$run" ]; then
  u export --run "$run" --figure curves --out "$tmp/curves.png" >"$tmp/export.log" 2>&1 && [ -s "$tmp/curves.png" ] ||
    no "export: $(tail -3 "$tmp/export.log")"
fi
[ $fail = 0 ] && echo "install: ok"
exit $fail
