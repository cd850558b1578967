#!/usr/bin/env bash
# Regenerate link/hot.order: the functions skiff executes on its hot paths,
# which build.rs hands to lld so that they are laid out together (see
# build.rs for why: RSS is counted in 64 KiB fault-around windows).
#
# How: build an unstripped static release binary, run a real lifecycle as
# root under valgrind's callgrind (run, create, start, state, exec, kill,
# delete, list, spec, --version), and collect every function it entered, by
# mangled name. Then run the same lifecycle natively with the kernel's
# page_fault_user tracepoint on and add the functions whose first
# instruction fetch still faulted outside the hot block (code valgrind
# cannot see: glibc's ifunc-selected string functions, which valgrind
# replaces, and paths valgrind does not support, such as clone3).
#
# Order (hot_order.py): what the container's init shares with `run`'s
# runtime process, then init's own functions, then the runtime's own, then
# the other commands'. Names carry a hash of the item's path and type, not of its
# code, so the list stays valid across most edits; regenerate after large
# changes, and check with `bash scripts/bench.sh` (peak RSS).
# Not a test. Needs root, valgrind and tracefs. Usage: bash scripts/hot-order.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
apt_need valgrind valgrind
apt_need jq jq
apt_need busybox-static /bin/busybox

# The order is of one build's symbols (their hashes differ between
# targets): the one scripts/bench.sh and `make` build (lib.sh, static_target).
t=$(static_target)
tdir=$PWD/target/hot-order
# The release profile as scripts/bench.sh builds it, but with symbols:
# symbol names carry a hash of the profile (strip included), which
# RUSTFLAGS does not change, so `-C strip=none` there keeps them equal to
# the stripped release binary's.
build() {
    RUSTFLAGS='-C target-feature=+crt-static -C strip=none' \
        cargo build -q --release --target $t --target-dir "$tdir"
}
build
work=$(mktemp -d /tmp/skiff-hot.XXXXXX)
ro=$work/ro
cleanup() {
    umount "$ro" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
# A read-only bind of the binary's directory: src/seal.rs leaves a binary
# on a read-only mount as it is, so no sealing re-exec (valgrind supports
# neither open_tree nor execveat of a memfd).
mkdir -p "$ro"
mount --bind "$tdir/$t/release" "$ro"
mount -o remount,bind,ro "$ro"
bin=$ro/skiff

make_bundle "$bin" "$work/b" >/dev/null
# valgrind refuses any RLIMIT_NOFILE but its own; keep an rlimit (its code
# path) of another type.
set_config "$work/b" '.process.rlimits = [{"type": "RLIMIT_CORE", "hard": 0, "soft": 0}]'
# init's profile is written inside the container: bind the output directory
# in at the same path.
mkdir -p "$work/cg"
set_config "$work/b" '.mounts += [{"destination": $d, "type": "bind", "source": $d, "options": ["rbind", "rw"]}]' --arg d "$work/cg"
set_args "$work/b" /bin/true
# run's container outlives the runtime's start-up, so that the runtime
# waits for it (signal forwarding, reaping) as it does for any real one.
cp -r "$work/b" "$work/w"
set_args "$work/w" /bin/sleep 1
cp -r "$work/b" "$work/s"
set_args "$work/s" /bin/sleep 1000

# lifecycle: the profiled scenario; `step TAG CMD...` runs one command
# (redefined per pass), TAG names the command for grouping.
lifecycle() {
    local r="$bin --root $work/root"
    step run $r run --bundle "$work/w" h1
    step create $r create --bundle "$work/s" h2
    step start $r start h2
    step state $r state h2
    step exec $r exec h2 /bin/true
    step kill $r kill h2 KILL
    step delete $r delete --force h2
    step list $r list
    step version $bin --version
    (cd "$work" && rm -f config.json && step spec $bin spec)
}

# --trace-children=no: forks are followed (stage-1, init), execs are not
# (the container's own program runs natively). A forked child inherits its
# parent's counts, so each process dumps what it ran before it forks
# (--dump-before): a child's own profile then starts at the fork, and init's
# functions are told apart from the runtime's. callgrind writes a profile
# when its process exits, which a successful exec never does: a `run` whose
# program does not exist profiles init's whole setup too (the exec fails
# in valgrind's check, before the kernel is asked).
step() {
    local tag=$1
    shift
    valgrind --tool=callgrind --demangle=no --trace-children=no \
        --dump-before='_ZN5skiff4fork9fork_into*' \
        --callgrind-out-file="$work/cg/$tag.%p" "$@" >/dev/null 2>&1 </dev/null || true
}
lifecycle
cp -r "$work/b" "$work/nx"
set_args "$work/nx" /nonexistent
step run-nx $bin --root "$work/root" run --bundle "$work/nx" h0

# Native passes with the fault tracepoint. Only the first function touched
# in a cold 64 KiB window faults, so each pass relinks with what it found
# and looks again; four passes leave next to nothing cold.
tr=/sys/kernel/tracing
mountpoint -q $tr || mount -t tracefs nodev $tr
ev=$tr/events/exceptions/page_fault_user
step() {
    echo "skiff-step $1" >$tr/trace_marker
    shift
    "$@" >/dev/null 2>&1 </dev/null || true
}
pairs=()
for pass in 1 2 3 4; do
    cp "$tdir/$t/release/skiff" "$work/bin.$pass"
    echo 0 >$tr/tracing_on
    echo >$tr/trace
    # Our processes only: the runtime, its stages, and init before its exec.
    echo 'comm ~ "skiff*"' >$ev/filter
    echo 1 >$ev/enable
    echo 1 >$tr/tracing_on
    lifecycle
    echo 0 >$tr/tracing_on
    echo 0 >$ev/enable
    echo 0 >$ev/filter
    cp $tr/trace "$work/faults.$pass"
    pairs+=("$work/bin.$pass" "$work/faults.$pass")
    python3 scripts/hot_order.py link/hot.order "$work/cg" "${pairs[@]}"
    build
done
echo "wrote link/hot.order ($(grep -vc '^#' link/hot.order) symbols); check with scripts/bench.sh"
