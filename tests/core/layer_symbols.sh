#!/bin/sh
# The engine's layers at link level: every kd_ symbol a layer's library
# uses is defined in that library or in a layer below it, so a call
# against the arrows (declared by hand, without the header) is caught too.
#   layer_symbols.sh NM NAME:LIB:BELOW1,BELOW2 ...   (lower layers first)
set -eu
nm=$1; shift
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
for spec; do
  name=${spec%%:*}; rest=${spec#*:}; lib=${rest%%:*}; below=${rest#*:}
  "$nm" --defined-only -g "$lib" | awk 'NF >= 3 {print $3}' | grep '^kd_' | sort -u > "$tmp/$name.def" || true
  cp "$tmp/$name.def" "$tmp/allowed"
  for b in $(echo "$below" | tr ',' ' '); do cat "$tmp/$b.def" >> "$tmp/allowed"; done
  sort -u "$tmp/allowed" -o "$tmp/allowed"
  "$nm" -u "$lib" | awk '{print $NF}' | grep '^kd_' | sort -u > "$tmp/$name.use" || true
  bad=$(comm -23 "$tmp/$name.use" "$tmp/allowed")
  if [ -n "$bad" ]; then
    echo "layer $name uses symbols of no layer below it: $(echo $bad)" >&2
    fail=1
  fi
  echo "layer $name: $(wc -l < "$tmp/$name.def") kd_ symbols defined, $(wc -l < "$tmp/$name.use") referenced across files"
done
exit $fail
