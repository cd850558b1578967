#!/usr/bin/env bash
# Benchmark skiff against runc (and crun) on one busybox bundle, side by side:
#   run /bin/true | create+start+delete | state
# plus the size and compile time of Docker's default seccomp profile
# (integration/fixtures/docker-default-seccomp.json), and prints mean milliseconds, the ratios skiff/runc and skiff/crun, and the peak
# RSS of `run`. A runtime or operation that fails shows "failed" (skiff while
# partly unimplemented) or "n/a" (crun 1.8 refuses cgroup v1/hybrid hosts).
# Not a test. Usage: bash scripts/bench.sh [RUNS]   (as root; default 30 runs)
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

runs=${1:-30}
apt_need busybox-static /bin/busybox
apt_need jq jq
apt_need bc bc
apt_need hyperfine hyperfine
apt_need time /usr/bin/time
cargo build --release || exit 1

declare -A bin=([skiff]=$PWD/target/release/skiff [runc]=$(command -v runc || true) [crun]=$(command -v crun || true))
names=(skiff runc crun)
ops=(run lifecycle state)

work=$(mktemp -d /tmp/skiff-bench.XXXXXX)
cleanup() {
    for n in "${names[@]}"; do
        [ -n "${bin[$n]}" ] && "${bin[$n]}" --root "$work/root-$n" delete --force bench-state >/dev/null 2>&1
    done
    rm -rf "$work"
}
trap cleanup EXIT

# One bundle for everyone; made with runc's spec when present, so the
# benchmark works while `skiff spec` is not implemented yet.
spec_rt=${bin[runc]:-${bin[skiff]}}
make_bundle "$spec_rt" "$work/bundle" >/dev/null || exit 1
set_args "$work/bundle" /bin/true
cp -r "$work/bundle" "$work/sleeper"
set_args "$work/sleeper" /bin/sleep 100000

# cmd RUNTIME OP: the shell command measured (`$$` makes each id unique).
cmd() {
    local r=${bin[$1]} root=$work/root-$1 b=$work/bundle
    case $2 in
        run) echo "$r --root $root run --bundle $b r\$\$" ;;
        lifecycle) echo "$r --root $root create --bundle $b c\$\$ && $r --root $root start c\$\$ && $r --root $root delete --force c\$\$" ;;
        state) echo "$r --root $root state bench-state" ;;
    esac
}

# mean_ms CMD: mean wall time in ms with hyperfine, else a date loop.
mean_ms() {
    if command -v hyperfine >/dev/null; then
        hyperfine --style none --warmup 3 --runs "$runs" --export-json "$work/h.json" "$1" >/dev/null 2>&1 || return 1
        jq -r '.results[0].mean * 1000' "$work/h.json"
    else
        local start end i
        start=$(date +%s%N)
        for ((i = 0; i < runs; i++)); do sh -c "$1" >/dev/null 2>&1 || return 1; done
        end=$(date +%s%N)
        echo "scale=3; ($end - $start) / $runs / 1000000" | bc
    fi
}

declare -A res rss
for n in "${names[@]}"; do
    r=${bin[$n]}
    mkdir -p "$work/root-$n"
    for op in "${ops[@]}"; do
        if [ -z "$r" ]; then res[$n.$op]="n/a"; continue; fi
        if [ "$op" = state ]; then
            "$r" --root "$work/root-$n" run -d --bundle "$work/sleeper" bench-state >/dev/null 2>&1 </dev/null
        fi
        c=$(cmd "$n" "$op")
        # One probe first: a failing runtime gets "failed" (crun: "n/a").
        if ! sh -c "$c" >/dev/null 2>"$work/err" </dev/null; then
            [ "$n" = crun ] && res[$n.$op]="n/a" || res[$n.$op]="failed"
            echo "$n $op: $(head -c 200 "$work/err" | tr '\n' ' ')" >&2
            continue
        fi
        res[$n.$op]=$(mean_ms "$c") || res[$n.$op]="failed"
    done
    rss[$n]="n/a"
    if [ -n "$r" ] && [ -x /usr/bin/time ]; then
        if /usr/bin/time -v "$r" --root "$work/root-$n" run --bundle "$work/bundle" "rss$$" >/dev/null 2>"$work/time" </dev/null; then
            rss[$n]="$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time") KiB"
        else
            [ "$n" = crun ] || rss[$n]="failed"
        fi
    fi
done

ratio() {
    case "$1$2" in
        *[!0-9.]*) echo "-" ;;
        *) echo "scale=2; $1 / $2" | bc ;;
    esac
}
num() { case $1 in *[!0-9.]*|'') echo "$1" ;; *) printf '%.2f' "$1" ;; esac; }

echo
echo "mean wall time in ms over $runs runs ($(uname -r), $(nproc) cpus)"
printf '%-22s %10s %10s %10s %11s %11s\n' operation skiff runc crun skiff/runc skiff/crun
for op in "${ops[@]}"; do
    s=${res[skiff.$op]} u=${res[runc.$op]} c=${res[crun.$op]}
    label=$op
    [ "$op" = run ] && label="run /bin/true"
    [ "$op" = lifecycle ] && label="create+start+delete"
    printf '%-22s %10s %10s %10s %11s %11s\n' "$label" "$(num "$s")" "$(num "$u")" "$(num "$c")" "$(ratio "$s" "$u")" "$(ratio "$s" "$c")"
done
printf '%-22s %10s %10s %10s\n' "peak RSS of run" "${rss[skiff]}" "${rss[runc]}" "${rss[crun]}"

# Seccomp: BPF size (the kernel allows 4096 instructions per filter) and
# compile time of Docker's default profile, from an ignored unit test (a
# debug test build: no extra CLI flag that runc lacks, no release test build).
echo
cargo test -q --bin skiff bench_docker_profile -- --ignored --nocapture 2>/dev/null |
    grep '^seccomp' || echo "seccomp docker-default: failed"
