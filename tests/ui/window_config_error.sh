#!/bin/sh
# The window on a fresh machine with a config error: the error is shown
# (and printed) before the default data set is built — nothing appears in
# an empty XDG_DATA_HOME. Usage (under xvfb-run): window_config_error.sh KDSCOPE
set -u
kd=$1
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kd-wincfg-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/xdg" "$tmp/no-source"
fail=0
# A build, if one started, would fail fast: the Fashion-MNIST source is empty.
XDG_DATA_HOME=$tmp/xdg KD_FASHION_MNIST_DIR=$tmp/no-source KDSCOPE_QUIT_AFTER=2 GSK_RENDERER=cairo \
  "$kd" window --set model.depth=11 --out "$tmp/run" >"$tmp/log" 2>&1
grep -q "kdscope window: .*depth: 11" "$tmp/log" || { echo "FAIL: no depth error in:"; cat "$tmp/log"; fail=1; }
grep -q "building" "$tmp/log" && { echo "FAIL: a build started:"; cat "$tmp/log"; fail=1; }
[ -z "$(ls -A "$tmp/xdg")" ] || { echo "FAIL: created in XDG_DATA_HOME:"; ls -R "$tmp/xdg"; fail=1; }
[ -e "$tmp/run" ] && { echo "FAIL: a run directory was created"; fail=1; }
[ $fail = 0 ] && echo "window_config_error: ok"
exit $fail
