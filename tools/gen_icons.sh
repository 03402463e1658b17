#!/bin/sh
# Renders the app icon's PNG sizes for the hicolor theme from its SVG
# (committed, so a build needs no SVG renderer): tools/gen_icons.sh
set -eu
cd "$(dirname "$0")/.."
svg=assets/icons/hicolor/scalable/apps/io.github.kdscope.Kdscope.svg
for s in 16 22 24 32 48 64 128 256 512; do
  d=assets/icons/hicolor/${s}x${s}/apps
  mkdir -p "$d"
  rsvg-convert -w "$s" -h "$s" "$svg" -o "$d/io.github.kdscope.Kdscope.png"
done
