#!/bin/sh
# kdscope settings: every descriptor listed without a run (text and JSON
# agree, one entry per key; symbols and slider grids), prefixes, and user errors (exit 1 with a
# message). Usage: cli_settings.sh KDSCOPE
set -u
kd=$1
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kd-settings-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail=0
no() { echo "FAIL: $*"; fail=1; }
"$kd" settings >"$tmp/all" 2>&1 || no "settings exited $?"
"$kd" settings --json >"$tmp/all.json" 2>&1 || no "settings --json exited $?"
keys=$(grep -c '^[a-z]' "$tmp/all")
jkeys=$(grep -c '"key":' "$tmp/all.json")
[ "$keys" -ge 60 ] || no "only $keys settings listed"
[ "$keys" = "$jkeys" ] || no "text lists $keys keys, JSON $jkeys"
grep -q '^defeat.alpha_bg  *float  *16  *\[0, 1000\] log  *live' "$tmp/all" || no "defeat.alpha_bg with its default, range and live flag"
grep -A1 '^defeat.alpha_bg ' "$tmp/all" | grep -q 'α_bg — Neck background weight, slider 1,1.2,1.6,2,3,4,5,6,8 per decade' ||
  no "defeat.alpha_bg with its symbol and slider grid"
grep -q '"symbol":[[:space:]]*"λ"' "$tmp/all.json" && grep -q '"grid":[[:space:]]*"step 5"' "$tmp/all.json" || no "JSON symbol and grid"
grep -q '^train.lr .*\[1e-6, 1\] log' "$tmp/all" || no "train.lr's range in the one number format"
grep -q '^train.optimizer .*sgd|adamw\|^train.optimizer .*adamw|sgd' "$tmp/all" || no "train.optimizer with its choices"
grep -q '^model.depth .*int' "$tmp/all" && grep -A0 '^model.depth' "$tmp/all" | grep -q live && no "model.depth shown as live"
"$kd" settings fgd pkd >"$tmp/two" 2>&1 || no "two prefixes exited $?"
grep -q '^cwd\.' "$tmp/two" && no "the prefix filter let cwd through"
grep -q '^fgd.temp' "$tmp/two" && grep -q '^pkd\.' "$tmp/two" || no "fgd.temp and pkd.* under two prefixes"
"$kd" settings nosuch >"$tmp/err" 2>&1 && no "an unknown prefix exited 0"
grep -q "no setting starts with 'nosuch'" "$tmp/err" || no "unknown prefix message"
"$kd" settings --bogus >"$tmp/err" 2>&1 && no "an unknown option exited 0"
grep -q "unknown option '--bogus'" "$tmp/err" || no "unknown option message"
[ $fail = 0 ] && echo "cli_settings: ok"
exit $fail
