#!/usr/bin/env bash
# Demo on a fresh machine: build skiff, make a busybox bundle with
# `skiff spec`, and run a container that shows what it sees.
# Usage: bash scripts/demo.sh   (as root)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

apt_need busybox-static /bin/busybox
apt_need jq jq
cargo build --release
skiff=$PWD/target/release/skiff

work=$(mktemp -d /tmp/skiff-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
make_bundle "$skiff" "$work/bundle"
set_config "$work/bundle" '.hostname = "skiff-demo"'
set_args "$work/bundle" sh -c 'echo pid=$$; echo hostname=$(hostname); echo; cat /proc/self/mountinfo | head'

echo "== skiff run (bundle $work/bundle)"
"$skiff" --root "$work/state" run --bundle "$work/bundle" "demo-$$"
