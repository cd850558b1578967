#!/usr/bin/env bash
# Benchmark skiff, runc and crun side by side on one busybox bundle:
#   run /bin/true | create+start+delete | 50 concurrent `run /bin/true` | state
# plus the peak RSS of `run` for each runtime, the binary size, and the
# size and compile time of Docker's default seccomp profile. Prints mean
# milliseconds and the ratios skiff/runc and skiff/crun.
#
# crun 1.8 refuses this host's hybrid cgroup layout, so crun's commands run
# as `unshare -m sh -c 'umount /sys/fs/cgroup/unified; exec crun ...'`: a
# private mount namespace where it sees a pure v1 layout. Each runtime's
# --root is on the shared filesystem, so create/start/delete in separate
# invocations find the same state. To keep the comparison fair, by default
# skiff and runc are wrapped exactly the same way (BENCH_WRAP=all): same
# wrapper cost, same cgroup layout. BENCH_WRAP=crun wraps only crun and
# subtracts the wrapper's own cost (the same unshare+umount+exec of
# /bin/true, measured separately) once per crun invocation. The output says
# which mode ran and what the wrapper costs.
# Not a test. Usage: bash scripts/bench.sh [RUNS] (as root; default 30 runs;
# the 50-container row uses RUNS/5, at least 3). SKIFF=path benchmarks that
# binary instead of building target/release/skiff.
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

runs=${1:-30}
conc_runs=$((runs / 5 < 3 ? 3 : runs / 5))
apt_need busybox-static /bin/busybox
apt_need jq jq
apt_need bc bc
apt_need hyperfine hyperfine
apt_need time /usr/bin/time
apt_need runc runc
apt_need crun crun
if [ -z "${SKIFF:-}" ]; then
    # Static: no dynamic loader, no shared libc pages (faster start, less
    # RSS). --target keeps crt-static away from the host's proc-macros.
    t=x86_64-unknown-linux-gnu
    RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --target $t || exit 1
    SKIFF=$PWD/target/$t/release/skiff
fi

declare -A bin=([skiff]=$SKIFF [runc]=$(command -v runc || true) [crun]=$(command -v crun || true))
names=(skiff runc crun)
ops=(run lifecycle conc50 state)
unified=/sys/fs/cgroup/unified
wrap_mode=${BENCH_WRAP:-all}
wrap_all=
[ "$wrap_mode" = all ] && wrap_all=1

work=$(mktemp -d /tmp/skiff-bench.XXXXXX)
cleanup() {
    for n in "${names[@]}"; do
        [ -n "${bin[$n]}" ] && sh -c "$(rt "$n") delete --force bench-state" >/dev/null 2>&1
    done
    rm -rf "$work"
}
trap cleanup EXIT

# wrapped RUNTIME: true when RUNTIME's commands run in the private mount namespace.
wrapped() {
    [ -n "$wrap_all" ] && return 0
    [ "$1" = crun ] && mountpoint -q "$unified"
}

# rt RUNTIME: the shell prefix of one invocation (with --root).
rt() {
    local r="${bin[$1]} --root $work/root-$1"
    if wrapped "$1"; then
        echo "unshare -m sh -c 'umount $unified 2>/dev/null; exec \"\$0\" \"\$@\"' $r"
    else
        echo "$r"
    fi
}

spec_rt=${bin[runc]:-${bin[skiff]}}
make_bundle "$spec_rt" "$work/bundle" >/dev/null || exit 1
set_args "$work/bundle" /bin/true
cp -r "$work/bundle" "$work/sleeper"
set_args "$work/sleeper" /bin/sleep 100000

# cmd RUNTIME OP: the shell command measured (`$$` makes each id unique).
cmd() {
    local r b=$work/bundle
    r=$(rt "$1")
    case $2 in
        run) echo "$r run --bundle $b r\$\$" ;;
        lifecycle) echo "$r create --bundle $b c\$\$ && $r start c\$\$ && $r delete --force c\$\$" ;;
        conc50) echo "for i in \$(seq 50); do $r run --bundle $b p\$\$-\$i >/dev/null 2>&1 & done; wait" ;;
        state) echo "$r state bench-state" ;;
    esac
}

# calls OP: runtime invocations per measured command (for the wrapper cost).
calls() { case $1 in lifecycle) echo 3 ;; *) echo 1 ;; esac; }

# mean_ms CMD [RUNS]: mean wall time in ms (hyperfine subtracts its shell's startup).
mean_ms() {
    hyperfine --style none --warmup 2 --runs "${2:-$runs}" --export-json "$work/h.json" \
        "$1" >/dev/null 2>"$work/herr" || { head -c 300 "$work/herr" >&2; return 1; }
    jq -r '.results[0].mean * 1000' "$work/h.json"
}

# The wrapper's own cost: one call, and 50 in parallel.
wrap1="unshare -m sh -c 'umount $unified 2>/dev/null; exec /bin/true'"
wrap_ms=$(mean_ms "$wrap1")
wrap50_ms=$(mean_ms "for i in \$(seq 50); do $wrap1 & done; wait" "$conc_runs")

declare -A res rss
for n in "${names[@]}"; do
    r=${bin[$n]}
    mkdir -p "$work/root-$n"
    for op in "${ops[@]}"; do
        if [ -z "$r" ]; then res[$n.$op]="n/a"; continue; fi
        if [ "$op" = state ]; then
            sh -c "$(rt "$n") run -d --bundle $work/sleeper bench-state" >/dev/null 2>&1 </dev/null
        fi
        c=$(cmd "$n" "$op")
        probe=$c
        [ "$op" = conc50 ] && probe=$(cmd "$n" run)
        if ! sh -c "$probe" >/dev/null 2>"$work/err" </dev/null; then
            res[$n.$op]="failed"
            echo "$n $op: $(head -c 200 "$work/err" | tr '\n' ' ')" >&2
            continue
        fi
        k=$runs
        [ "$op" = conc50 ] && k=$conc_runs
        m=$(mean_ms "$c" "$k") || { res[$n.$op]="failed"; continue; }
        if wrapped "$n" && [ -z "$wrap_all" ]; then
            if [ "$op" = conc50 ]; then w=$wrap50_ms; else w="$(calls "$op") * $wrap_ms"; fi
            m=$(echo "scale=3; $m - $w" | bc)
        fi
        res[$n.$op]=$m
    done
    rss[$n]="n/a"
    [ -n "$r" ] || continue
    # /usr/bin/time inside the wrapper: the maximum over the runtime and
    # every process it reaps (its stages, and the container's /bin/true).
    tcmd="/usr/bin/time -f %M ${bin[$n]} --root $work/root-$n run --bundle $work/bundle rss$$"
    if wrapped "$n"; then tcmd="unshare -m sh -c 'umount $unified 2>/dev/null; exec \"\$0\" \"\$@\"' $tcmd"; fi
    if sh -c "$tcmd" >/dev/null 2>"$work/time" </dev/null; then
        rss[$n]="$(tail -n 1 "$work/time") KiB"
    else
        rss[$n]="failed"
    fi
done

ratio() {
    case "$1$2" in
        *[!0-9.]*) echo "-" ;;
        *) echo "scale=2; $1 / $2" | bc ;;
    esac
}
num() { case ${1#-} in *[!0-9.]*|'') echo "$1" ;; *) printf '%.2f' "$1" ;; esac; }

echo
echo "mean wall time in ms ($runs runs, 50-container row $conc_runs runs; $(uname -r), $(nproc) cpus)"
if [ -n "$wrap_all" ]; then
    printf 'all three runtimes run in a private mount namespace without %s (BENCH_WRAP=all); that wrapper alone costs %.2f ms per call, %.2f ms for 50 in parallel\n' "$unified" "$wrap_ms" "$wrap50_ms"
else
    printf 'crun runs in a private mount namespace; its wrapper cost is subtracted: %.2f ms per call, %.2f ms for 50 in parallel\n' "$wrap_ms" "$wrap50_ms"
fi
printf '%-22s %10s %10s %10s %11s %11s\n' operation skiff runc crun skiff/runc skiff/crun
for op in "${ops[@]}"; do
    s=${res[skiff.$op]} u=${res[runc.$op]} c=${res[crun.$op]}
    case $op in
        run) label="run /bin/true" ;;
        lifecycle) label="create+start+delete" ;;
        conc50) label="50 x run, parallel" ;;
        *) label=$op ;;
    esac
    printf '%-22s %10s %10s %10s %11s %11s\n' "$label" "$(num "$s")" "$(num "$u")" "$(num "$c")" "$(ratio "$s" "$u")" "$(ratio "$s" "$c")"
done
kib() { echo "${1% KiB}"; }
printf '%-22s %10s %10s %10s %11s %11s\n' "peak RSS of run (KiB)" "$(kib "${rss[skiff]}")" "$(kib "${rss[runc]}")" "$(kib "${rss[crun]}")" \
    "$(ratio "$(kib "${rss[skiff]}")" "$(kib "${rss[runc]}")")" "$(ratio "$(kib "${rss[skiff]}")" "$(kib "${rss[crun]}")")"
for n in "${names[@]}"; do
    [ -n "${bin[$n]}" ] && printf 'binary %-6s %9s bytes  %s\n' "$n" "$(stat -L -c %s "${bin[$n]}")" "$(file -bL "${bin[$n]}" | cut -d, -f1-2,4-5)"
done

# skiff's own machinery, the figures its code comments point here for:
# - seal: what sealing /proc/self/exe costs (src/seal.rs). Any "run"
#   argument seals (`state run`: no such container), so the difference to
#   a `state` that does not seal is the re-exec: as root the entry's
#   read-only bind; as an unprivileged user `ensure_sealed`'s memfd copy.
# - layout: the sections build.rs shapes (text size, RELA vs RELR).
# min_ms CMD: the fastest of RUNS*3 runs; a difference of two means drowns
# a sub-millisecond cost in the noise of a shared machine, of two minima less.
min_ms() {
    hyperfine --style none --warmup 3 --runs $((runs * 3)) --export-json "$work/h.json" \
        "$1" >/dev/null 2>"$work/herr" || { head -c 300 "$work/herr" >&2; return 1; }
    jq -r '.results[0].min * 1000' "$work/h.json"
}
seal_ms() {
    local w
    w=$(min_ms "$1 state run >/dev/null 2>&1 || true") &&
        echo "scale=3; $w - $(min_ms "$1 state nosuch >/dev/null 2>&1 || true")" | bc
}
echo
echo "skiff machinery (ms: fastest of $((runs * 3)) runs with seal minus without; sizes of $SKIFF)"
printf '%-44s %8s\n' "seal, root (entry: read-only bind + exec)" "$(num "$(seal_ms "$SKIFF --root $work/root-skiff")")"
printf '%-44s %8s\n' "seal, unprivileged (memfd copy + exec)" \
    "$(num "$(seal_ms "setpriv --reuid nobody --regid nogroup --clear-groups $SKIFF --root $work/none")")"
sect() {
    local hex
    hex=$(readelf -SW "$SKIFF" | awk -v s="$1" '{ for (i = 1; i < NF; i++) if ($i == s) print $(i + 4) }')
    echo $((16#${hex:-0}))
}
printf '%-44s %8s\n' ".text bytes" "$(sect .text)" ".rela.dyn bytes (SKIFF_NO_LAYOUT: all here)" "$(sect .rela.dyn)" \
    ".relr.dyn bytes (packed relocations)" "$(sect .relr.dyn)" "binary bytes" "$(stat -L -c %s "$SKIFF")"

# Seccomp: BPF size (the kernel allows 4096 instructions per filter) and
# compile time of Docker's default profile, from an ignored unit test.
echo
cargo test -q --bin skiff bench_docker_profile -- --ignored --nocapture 2>/dev/null |
    grep '^seccomp' || echo "seccomp docker-default: failed"
