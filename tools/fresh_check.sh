#!/bin/sh
# The README's two set-up commands on a truly fresh Debian 12: a minbase
# chroot built by mmdebstrap from Debian's packages, with nothing but git in
# it, a clone of this repository's HEAD (what CI sees: committed work only),
# and then, each in its own fresh copy of the chroot:
#   test  `./kdscope test` with KD_TEST_NO_SKIPS=1, as CI runs it: must end
#         "0 failed, 0 skipped (0 oracle comparisons skipped)"
#   main  `./kdscope` (the window on the default run) against an Xvfb display
#         of the host's; passes when the window is up and the run has logged
#         training steps
#   deb   the Debian package: its build dependencies from debian/control,
#         `dpkg-buildpackage -us -uc -b`, `apt-get install ./kdscope_*.deb`,
#         then the installed kdscope: --version (installed assets),
#         make-dataset, a 20-step distill, and the window on the default
#         run (as `main`, screenshot WORKDIR/deb.png)
# usage (as root): tools/fresh_check.sh [test|main|both|deb] [WORKDIR]
# WORKDIR (default /var/tmp/kdscope-fresh) keeps the base tarball between
# uses and the logs: WORKDIR/test.log, WORKDIR/main.log, WORKDIR/main.png.
set -eu
what=${1:-both}
work=${2:-/var/tmp/kdscope-fresh}
repo=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "fresh_check: run as root (chroot, mounts)" >&2; exit 1; }
case $what in test|main|both|deb) ;; *) echo "usage: $0 [test|main|both|deb] [WORKDIR]" >&2; exit 1 ;; esac
mkdir -p "$work"

need() { command -v "$1" >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >&2; }
need mmdebstrap mmdebstrap
if [ ! -s "$work/base.tar" ]; then
  echo "fresh_check: building a Debian 12 minbase root (once)" >&2
  mmdebstrap --format=tar --variant=minbase --include=git,ca-certificates bookworm "$work/base.tar.tmp" >&2
  mv "$work/base.tar.tmp" "$work/base.tar"
fi

root=
cleanup() {
  [ -n "$root" ] || return 0
  for m in tmp/.X11-unix dev/shm dev/pts dev sys proc; do
    mountpoint -q "$root/$m" 2>/dev/null && umount -l "$root/$m"
  done
  rm -rf "$root"
  root=
}
trap cleanup EXIT INT TERM

# A fresh root each time: the base tarball plus a clone, nothing else.
fresh_root() {
  cleanup
  root=$(mktemp -d "$work/root.XXXXXX")
  tar -C "$root" -xf "$work/base.tar"
  git clone -q --no-hardlinks "$repo" "$root/work/kdscope"
  cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
  mount -t proc proc "$root/proc"
  mount --rbind /sys "$root/sys"
  mount --bind /dev "$root/dev"
  mount --bind /dev/pts "$root/dev/pts"
  mount -t tmpfs shm "$root/dev/shm"
}

in_root() { chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 TERM=dumb "$@"; }

status=0
if [ "$what" = test ] || [ "$what" = both ]; then
  fresh_root
  echo "fresh_check: ./kdscope test in a fresh root (log: $work/test.log)" >&2
  t0=$(date +%s)
  if in_root sh -c 'cd /work/kdscope && KD_TEST_NO_SKIPS=1 ./kdscope test' >"$work/test.log" 2>&1; then r=0; else r=$?; fi
  echo "fresh_check: test exited $r after $(( $(date +%s) - t0 )) s; $(grep '^kdscope test:' "$work/test.log" | tail -1)" >&2
  [ "$r" = 0 ] || status=1
fi

if [ "$what" = main ] || [ "$what" = both ]; then
  need Xvfb xvfb
  need xdotool xdotool
  fresh_root
  disp=:87
  Xvfb "$disp" -screen 0 1600x1000x24 -nolisten tcp >/dev/null 2>&1 &
  xpid=$!
  mkdir -p "$root/tmp/.X11-unix"
  sleep 1
  mount --bind /tmp/.X11-unix "$root/tmp/.X11-unix"
  echo "fresh_check: ./kdscope in a fresh root on display $disp (log: $work/main.log)" >&2
  in_root sh -c "cd /work/kdscope && DISPLAY=$disp exec ./kdscope" >"$work/main.log" 2>&1 &
  apid=$!
  ok=0
  # Installing, building and making fashion-det come first: up to 40 min.
  for _ in $(seq 1 2400); do
    if ! kill -0 "$apid" 2>/dev/null; then break; fi
    if DISPLAY=$disp xdotool search --onlyvisible --name kdscope >/dev/null 2>&1 &&
       ls "$root"/work/kdscope/runs/*/metrics.jsonl >/dev/null 2>&1 &&
       [ "$(cat "$root"/work/kdscope/runs/*/metrics.jsonl | grep -c '"parts"')" -ge 20 ]; then ok=1; break; fi
    sleep 1
  done
  if [ "$ok" = 1 ] && command -v import >/dev/null 2>&1; then import -display "$disp" -window root "$work/main.png" || true; fi
  steps=$(cat "$root"/work/kdscope/runs/*/metrics.jsonl 2>/dev/null | grep -c '"parts"' || true)
  # The launcher execs /work/kdscope/build/app/kdscope (the chroot's path).
  pkill -f '^/work/kdscope/build/app/kdscope' 2>/dev/null || true
  sleep 2
  kill "$apid" 2>/dev/null || true
  kill "$xpid" 2>/dev/null || true
  if [ "$ok" = 1 ]; then echo "fresh_check: main: the window is up, the default run logged $steps steps" >&2
  else echo "fresh_check: main: FAILED (window or training steps missing; $steps steps logged)" >&2; tail -20 "$work/main.log" >&2; status=1; fi
fi

if [ "$what" = deb ]; then
  need Xvfb xvfb
  need xdotool xdotool
  fresh_root
  echo "fresh_check: deb: build, install and run the package in a fresh root (log: $work/deb.log)" >&2
  t0=$(date +%s)
  if in_root sh -c 'set -eux
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends build-essential dpkg-dev debhelper
    cd /work/kdscope
    apt-get build-dep -y -qq ./
    dpkg-buildpackage -us -uc -b
    apt-get install -y -qq --no-install-recommends ../kdscope_*.deb
    cd /
    kdscope --version | tee /tmp/version
    grep -q "assets: /usr/share/kdscope (installed)" /tmp/version
    kdscope make-dataset --threads 2
    kdscope distill --steps 20 --quiet
    ls /root/.local/share/kdscope/runs/*/metrics.jsonl
    ls /usr/share/applications/io.github.kdscope.Kdscope.desktop /usr/share/icons/hicolor/48x48/apps/io.github.kdscope.Kdscope.png
    rm -rf /root/.local/share/kdscope/runs' \
    >"$work/deb.log" 2>&1; then r=0; else r=$?; fi
  echo "fresh_check: deb: build+install+cli exited $r after $(( $(date +%s) - t0 )) s" >&2
  [ "$r" = 0 ] || { tail -20 "$work/deb.log" >&2; status=1; }
  if [ "$r" = 0 ]; then
    disp=:88
    Xvfb "$disp" -screen 0 1600x1000x24 -nolisten tcp >/dev/null 2>&1 &
    xpid=$!
    mkdir -p "$root/tmp/.X11-unix"
    sleep 1
    mount --bind /tmp/.X11-unix "$root/tmp/.X11-unix"
    in_root sh -c "cd / && DISPLAY=$disp exec kdscope" >"$work/deb-window.log" 2>&1 &
    apid=$!
    ok=0
    runs=$root/root/.local/share/kdscope/runs
    for _ in $(seq 1 300); do
      kill -0 "$apid" 2>/dev/null || break
      n=$(cat "$runs"/*-distill/metrics.jsonl 2>/dev/null | grep -c '"parts"' || true)
      if DISPLAY=$disp xdotool search --onlyvisible --name kdscope >/dev/null 2>&1 && [ "${n:-0}" -ge 60 ]; then ok=1; break; fi
      sleep 1
    done
    [ "$ok" = 1 ] && command -v import >/dev/null 2>&1 && import -display "$disp" -window root "$work/deb.png" || true
    pkill -f '^kdscope$' 2>/dev/null || pkill -x kdscope 2>/dev/null || true
    sleep 2
    kill "$apid" "$xpid" 2>/dev/null || true
    if [ "$ok" = 1 ]; then echo "fresh_check: deb: the installed window is up and training" >&2
    else echo "fresh_check: deb: window FAILED" >&2; tail -20 "$work/deb-window.log" >&2; status=1; fi
  fi
fi
exit $status
