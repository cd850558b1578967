#!/usr/bin/env bash
# Differential testing: N generated OCI configs through skiff, runc and crun,
# comparing what the container sees (scripts/difftest/README.md).
# Usage: bash scripts/difftest.sh [N] [SEED]   (as root; default N=100, SEED=1)
# Environment: SKIFF=path tests that binary instead of building one;
# DIFFTEST_OUT=dir for shrunk bundles (default target/difftest);
# DIFFTEST_SHRINK=k shrinks at most k differing configs (default 3);
# DIFFTEST_FIRST=i starts at config index i (to replay one: N=1 FIRST=i).
# Closing line: `difftest: N configs, D differences`; exit 1 when D > 0.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

n=${1:-100}
seed=${2:-1}
if [ "$(id -u)" -ne 0 ]; then
    echo "difftest: needs root" >&2
    exit 1
fi
apt_need runc runc
apt_need crun crun

# The unit tests of the generator, comparator and shrinker first.
python3 -m unittest discover -s scripts/difftest -p 'test_*.py' -q 2>&1 | tail -3

if [ -z "${SKIFF:-}" ]; then
    t=$(static_target)
    static_build "$t" --quiet
    SKIFF=$PWD/target/$t/release/skiff
fi
t=x86_64-unknown-linux-gnu
RUSTFLAGS='-C target-feature=+crt-static' CARGO_TARGET_DIR=$PWD/target/observer \
    cargo build --quiet --release --target $t --manifest-path tools/observer/Cargo.toml
obs=$PWD/target/observer/$t/release/observer

work=$(mktemp -d /tmp/skiff-difftest.XXXXXX)
cleanup() {
    umount -l "$work/src/sub" 2>/dev/null || true
    rm -rf "$work"
    # Cgroups a failed delete could leave behind (cgroupsPath /dt-<rt>-<id>,
    # id dt<seed>-<i>: only this seed's, a parallel run may own others).
    for d in /sys/fs/cgroup/*/dt-*-dt"$seed"-*; do
        [ -d "$d" ] && rmdir "$d" 2>/dev/null || true
    done
}
trap cleanup EXIT
out=${DIFFTEST_OUT:-$PWD/target/difftest}
mkdir -p "$out"
python3 scripts/difftest/run.py --skiff "$SKIFF" --runc "$(command -v runc)" --crun "$(command -v crun)" \
    --observer "$obs" --work "$work" --out "$out" --shrink "${DIFFTEST_SHRINK:-3}" \
    --first "${DIFFTEST_FIRST:-0}" ${DIFFTEST_VERBOSE:+--verbose} "$n" "$seed"
