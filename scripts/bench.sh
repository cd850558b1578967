#!/usr/bin/env bash
# Benchmark skiff, runc and crun side by side on one busybox bundle. Each
# row prints its target (issue 17) and `ok` or `MISS`:
#   core:     run /bin/true | create+start+delete | 50 concurrent `run
#             /bin/true` | state | exec /bin/true into a running container,
#             and `run /bin/true` against the kernel's floor: `unshare
#             --pid --mount --uts --ipc --net --fork /bin/true`, and against
#             the bundle's floor (examples/floor.rs: the system calls the
#             bundle asks of any runtime, and no runtime), alone and 50 in
#             parallel
#   rss:      the peak RSS of `run` for each runtime, the binary sizes
#   scale:    1,000 containers alive under one --root (skiff, runc):
#             create/list/state latency against the number alive, then
#             `delete --force` of all of them in parallel; a table and an
#             SVG plot (its path is printed)
#   engines:  `podman run --rm busybox true` and `ctr run --rm ... true`
#             end to end with each runtime, and the runtime's share of it
#   machinery: skiff's seal cost and link layout sizes
#   seccomp:  size and compile time of Docker's default seccomp profile
# BENCH_ROWS=core,rss,... runs a subset (default: all of them, in order).
#
# Timing: the commands of one row are measured interleaved, in BENCH_ROUNDS
# rounds (default 3) of RUNS/rounds hyperfine runs each, the order rotating
# every round, so a change of load on a shared machine hits all alike; a
# cell is the mean over the rounds. The ratios are of those means.
#
# crun 1.8 refuses this host's hybrid cgroup layout, so crun's commands run
# as `nsenter -m -t HOLDER crun ...`: in a private mount namespace, made
# once with /sys/fs/cgroup/unified unmounted, where it sees a pure v1
# layout. Each runtime's --root is on the shared filesystem, so create/start/delete in separate
# invocations find the same state. To keep the comparison fair, by default
# skiff and runc are wrapped exactly the same way (BENCH_WRAP=all): same
# wrapper cost, same cgroup layout. BENCH_WRAP=crun wraps only crun and
# subtracts the wrapper's own cost (the same nsenter + exec of /bin/true,
# measured separately) once per crun invocation. The output says
# which mode ran and what the wrapper costs. The floor row and the scale
# rows run skiff unwrapped (it needs no wrapper; neither does the floor).
# The engines run inside one such private namespace, whichever runtime.
#
# Not a test. Usage: bash scripts/bench.sh [RUNS] (as root; default 30 runs;
# the 50-container row uses RUNS/5, at least 3). SKIFF=path benchmarks that
# binary instead of building target/release/skiff. BENCH_OUT=dir keeps the
# plot (default target/bench). SCALE_N=1000 containers, ENGINE_RUNS=10.
# BASE=path also runs that skiff binary (e.g. one built at the commit an
# issue started from) in the core and rss rows, interleaved with the rest,
# and prints each row's ratios for it beside today's: "no row regressed"
# measured in one run rather than against figures of another day.
set -uo pipefail
cd "$(dirname "$0")/.."
# An error value that is made and handled on a path measured here would
# walk the stack for a backtrace: users do not time skiff that way.
unset RUST_BACKTRACE RUST_LIB_BACKTRACE
. scripts/lib.sh

runs=${1:-30}
conc_runs=$((runs / 5 < 3 ? 3 : runs / 5))
rounds=${BENCH_ROUNDS:-3}
rows=${BENCH_ROWS:-core,rss,scale,engines,machinery,seccomp}
out_dir=${BENCH_OUT:-$PWD/target/bench}
want() { case ",$rows," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
apt_need busybox-static /bin/busybox
apt_need jq jq
apt_need bc bc
apt_need hyperfine hyperfine
apt_need time /usr/bin/time
apt_need linux-perf perf
apt_need runc runc
apt_need crun crun
if want engines; then
    apt_need podman podman
    apt_need containerd containerd
    apt_need umoci umoci
fi
# Static: no dynamic loader, no shared libc pages (faster start, less
# RSS); musl when there (lib.sh, static_target). --target keeps crt-static
# away from the host's proc-macros. The bundle's floor is built the same
# way, so that skiff/floor compares the runtime's work, not two C libraries.
t=$(static_target)
if [ -z "${SKIFF:-}" ]; then
    static_build "$t" || exit 1
    SKIFF=$PWD/target/$t/release/skiff
fi
if want core || want scale; then
    static_build "$t" --example floor || exit 1
    floor_bin=$PWD/target/$t/release/examples/floor
fi

declare -A bin=([skiff]=$SKIFF [runc]=$(command -v runc || true) [crun]=$(command -v crun || true))
names=(skiff runc crun)
if [ -n "${BASE:-}" ]; then
    bin[base]=$BASE
    names=(skiff base runc crun)
fi
ops=(run lifecycle state exec conc50)
unified=/sys/fs/cgroup/unified
wrap_mode=${BENCH_WRAP:-all}
wrap_all=
[ "$wrap_mode" = all ] && wrap_all=1
work=$(mktemp -d /tmp/skiff-bench.XXXXXX)

# The private mount namespace without the cgroup2 mount (see above): made
# once and held by a sleeping process; each wrapped call enters it with
# nsenter. A fresh `unshare -m` + umount per call cost 2-40 ms here (the
# umount and the namespace's teardown each wait for an RCU grace period),
# more than the calls measured, and as noisy as the machine's load.
unshare -m --propagation private sh -c "umount $unified 2>/dev/null; exec sleep infinity" </dev/null >/dev/null 2>&1 &
holder=$!
for _ in $(seq 100); do
    [ "$(readlink /proc/$holder/ns/mnt)" != "$(readlink /proc/self/ns/mnt)" ] &&
        ! nsenter -m -t "$holder" mountpoint -q "$unified" && break
    sleep 0.05
done
wrap_sh="nsenter -m -t $holder"
engine_cleanup=()
cleanup() {
    for n in "${names[@]}"; do
        [ -n "${bin[$n]}" ] && sh -c "$(rt "$n") delete --force bench-state-$n" >/dev/null 2>&1
    done
    for f in "${engine_cleanup[@]}"; do $f; done
    for n in skiff runc; do scale_delete_all "$n" >/dev/null 2>&1; done
    kill "$holder" 2>/dev/null
    wait "$holder" 2>/dev/null
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
        echo "$wrap_sh $r"
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
        state) echo "$r state bench-state-$1" ;;
        exec) echo "$r exec bench-state-$1 /bin/true" ;;
    esac
}

# calls OP: runtime invocations per measured command (for the wrapper cost).
calls() { case $1 in lifecycle) echo 3 ;; *) echo 1 ;; esac; }

# means RUNS CMD...: the mean wall time in ms of each CMD, one per line.
# `rounds` rounds of RUNS/rounds runs (at least 2), the commands interleaved
# by round with the order rotating; hyperfine subtracts its shell's start-up.
means() {
    local k=$1 n r i j
    shift
    local cmds=("$@") args idx sum=()
    n=${#cmds[@]}
    k=$((k / rounds < 2 ? 2 : k / rounds))
    for ((i = 0; i < n; i++)); do sum[i]=0; done
    for ((r = 0; r < rounds; r++)); do
        args=() idx=()
        for ((i = 0; i < n; i++)); do
            j=$(((i + r) % n))
            idx+=("$j")
            args+=("${cmds[j]}")
        done
        hyperfine --style none --warmup 1 --runs "$k" --export-json "$work/h.json" \
            "${args[@]}" >/dev/null 2>"$work/herr" || { head -c 300 "$work/herr" >&2; return 1; }
        for ((i = 0; i < n; i++)); do
            sum[idx[i]]=$(echo "${sum[idx[i]]} + $(jq -r ".results[$i].mean * 1000" "$work/h.json")" | bc -l)
        done
    done
    for ((i = 0; i < n; i++)); do echo "scale=3; ${sum[i]} / $rounds" | bc -l; done
}

# mean_ms CMD [RUNS]: the mean of one command alone (the wrapper's cost).
mean_ms() {
    hyperfine --style none --warmup 2 --runs "${2:-$runs}" --export-json "$work/h.json" \
        "$1" >/dev/null 2>"$work/herr" || { head -c 300 "$work/herr" >&2; return 1; }
    jq -r '.results[0].mean * 1000' "$work/h.json"
}

ratio() {
    case "$1$2" in
        *[!0-9.]* | '') echo "-" ;;
        *) echo "scale=2; $1 / $2" | bc ;;
    esac
}
num() { case ${1#-} in *[!0-9.]* | '') echo "$1" ;; *) printf '%.2f' "$1" ;; esac; }
# mark VALUE MAX: ok when VALUE <= MAX, MISS otherwise, `-` without a value.
mark() {
    case "$1" in
        *[!0-9.]* | '') echo "-" ;;
        *) [ "$(echo "$1 <= $2" | bc)" = 1 ] && echo ok || echo MISS ;;
    esac
}
load() { cut -d' ' -f1-3 /proc/loadavg; }

echo "skiff bench: $(date -u +%FT%TZ), load average $(load), $(uname -r), $(nproc) cpus, rows $rows"

declare -A res rss

# core_rows: every op for every runtime, the runtimes interleaved per op.
core_rows() {
    local n op c k m w probe
    for n in "${names[@]}"; do
        mkdir -p "$work/root-$n"
        # One id per runtime: the default cgroup path is /<id>, shared by all.
        [ -n "${bin[$n]}" ] && sh -c "$(rt "$n") run -d --bundle $work/sleeper bench-state-$n" >/dev/null 2>&1 </dev/null
    done
    # The wrapper's own cost: one call, and 50 in parallel.
    local wrap1="$wrap_sh /bin/true"
    wrap_ms=$(mean_ms "$wrap1")
    wrap50_ms=$(mean_ms "for i in \$(seq 50); do $wrap1 & done; wait" "$conc_runs")
    # The kernel's floor: the namespaces of the bundle (pid, mount, uts,
    # ipc, net) and an exec of /bin/true, against skiff's own `run`, both
    # unwrapped and interleaved. The bundle's floor (examples/floor.rs):
    # every system call the bundle asks of any runtime (state, cgroups,
    # namespaces, mounts, devices, pivot_root, masked and read-only paths,
    # capabilities, exec, cleanup) and nothing of a runtime's own; alone
    # here, 50 in parallel at the end. The parallel rows come last: the
    # kernel's deferred teardown of 50 namespaces at a time (RCU, network
    # namespace cleanup) would otherwise weigh on the rows after them.
    local floor="unshare --pid --mount --uts --ipc --net --fork /bin/true"
    local bfloor="$floor_bin run $work/bundle/rootfs $work/root-floor b\$\$ /bin/true"
    local srun="${bin[skiff]} --root $work/root-skiff run --bundle $work/bundle f\$\$"
    mapfile -t m < <(means "$runs" "$floor" "$bfloor" "$srun")
    floor_ms=${m[0]:-failed} bfloor_ms=${m[1]:-failed} floor_run_ms=${m[2]:-failed}
    run_phases >"$work/phases"
    for op in "${ops[@]}"; do
        local cmds=() who=()
        for n in "${names[@]}"; do
            if [ -z "${bin[$n]}" ]; then res[$n.$op]="n/a"; continue; fi
            c=$(cmd "$n" "$op")
            probe=$c
            [ "$op" = conc50 ] && probe=$(cmd "$n" run)
            if ! sh -c "$probe" >/dev/null 2>"$work/err" </dev/null; then
                res[$n.$op]="failed"
                echo "$n $op: $(head -c 200 "$work/err" | tr '\n' ' ')" >&2
                continue
            fi
            cmds+=("$c") who+=("$n")
        done
        k=$runs
        [ "$op" = conc50 ] && k=$conc_runs
        # The wrapper alone, interleaved with the op (for the net ratios).
        if [ "$op" = conc50 ]; then cmds+=("for i in \$(seq 50); do $wrap1 & done; wait"); else cmds+=("$wrap1"); fi
        mapfile -t m < <(means "$k" "${cmds[@]}")
        res[wrap.$op]=${m[${#who[@]}]:-}
        for i in "${!who[@]}"; do
            n=${who[i]}
            res[$n.$op]=${m[i]:-failed}
            if wrapped "$n" && [ -z "$wrap_all" ] && [ -n "${m[i]:-}" ]; then
                if [ "$op" = conc50 ]; then w=$wrap50_ms; else w="$(calls "$op") * $wrap_ms"; fi
                res[$n.$op]=$(echo "scale=3; ${m[i]} - $w" | bc)
            fi
        done
    done
    local bf50="for i in \$(seq 50); do $floor_bin run $work/bundle/rootfs $work/root-floor p\$\$-\$i /bin/true & done; wait"
    local s50="for i in \$(seq 50); do ${bin[skiff]} --root $work/root-skiff run --bundle $work/bundle p\$\$-\$i & done; wait"
    mapfile -t m < <(means "$conc_runs" "$bf50" "$s50")
    bfloor50_ms=${m[0]:-failed} floor_run50_ms=${m[1]:-failed}
}

# run_phases: where `run /bin/true` spends its time beyond the floor: the
# median ms from each phase mark (SKIFF_TRACE=1, src/log.rs) to the next,
# over 15 runs, in the order reached; "exit" is the last mark to the
# runtime's exit as its parent sees it, "start" is exec (and the seal's
# re-exec) to the first mark.
run_phases() {
    local i t0 t1
    for i in $(seq 15); do
        t0=$EPOCHREALTIME
        SKIFF_TRACE=1 ${bin[skiff]} --root "$work/root-skiff" run --bundle "$work/bundle" ph$i 2>"$work/tr" >/dev/null
        t1=$EPOCHREALTIME
        grep -o 'phase=[a-z0-9-]* pid=[0-9]* us=[0-9]*' "$work/tr" | sed 's/[a-z]*=//g' | sort -k3 -n |
            awk -v total="$(echo "($t1 - $t0) * 1000000 / 1" | bc)" '
                { n++; name[n] = $1; us[n] = $3 }
                END {
                    if (!n) exit
                    # The first mark counts from the re-exec'"'"'d process'"'"'s start (the
                    # trace clock); what precedes it is total minus the last mark.
                    printf "%s %d\n", "start+exit", total - us[n] + 0
                    printf "%s %d\n", name[1], us[1]
                    for (i = 2; i <= n; i++) printf "%s %d\n", name[i], us[i] - us[i - 1]
                }'
    done | awk '
        !($1 in seen) { seen[$1] = ++k; order[k] = $1 }
        { v[$1, ++c[$1]] = $2 }
        END {
            for (i = 1; i <= k; i++) {
                p = order[i]; m = c[p]
                for (a = 1; a <= m; a++) s[a] = v[p, a]
                for (a = 1; a <= m; a++) for (b = a + 1; b <= m; b++) if (s[b] < s[a]) { t = s[a]; s[a] = s[b]; s[b] = t }
                printf "%s %.2f\n", p, s[int((m + 1) / 2)] / 1000
            }
        }'
}

# net A B W: A/B, both net of the wrapper's cost W when every runtime is
# wrapped (as target's mark).
net() {
    if [ -n "$wrap_all" ] && [ -n "$3" ]; then
        ratio "$(echo "$1 - $3" | bc 2>/dev/null)" "$(echo "$2 - $3" | bc 2>/dev/null)"
    else
        ratio "$1" "$2"
    fi
}

# target SKIFF CRUN WRAP MAX: the skiff/crun target. With every runtime
# wrapped (BENCH_WRAP=all) the ratio is also given net of the wrapper's
# cost (measured interleaved with the op), which both sides pay once per
# call, and the mark is on that: the wrapper is the bench's, not either
# runtime's.
target() {
    local r
    r=$(net "$1" "$2" "$3")
    if [ -n "$wrap_all" ]; then
        echo "skiff/crun net of the wrapper $r <= $4: $(mark "$r" "$4")"
    else
        echo "skiff/crun <= $4: $(mark "$r" "$4")"
    fi
}

print_core() {
    echo
    echo "mean wall time in ms ($runs runs in $rounds interleaved rounds, 50-container row $conc_runs runs)"
    if [ -n "$wrap_all" ]; then
        printf 'all three runtimes run in a private mount namespace without %s (BENCH_WRAP=all); that wrapper alone costs %.2f ms per call, %.2f ms for 50 in parallel (interleaved with each row: %s)\n' "$unified" "$wrap_ms" "$wrap50_ms" \
            "$(for op in "${ops[@]}"; do printf '%s %s ' "$op" "$(num "${res[wrap.$op]:-}")"; done)"
    else
        printf 'crun runs in a private mount namespace; its wrapper cost is subtracted: %.2f ms per call, %.2f ms for 50 in parallel\n' "$wrap_ms" "$wrap50_ms"
    fi
    printf '%-24s %9s %9s %9s %10s %10s  %s\n' operation skiff runc crun skiff/runc skiff/crun target
    local op s u c label tgt
    for op in "${ops[@]}"; do
        s=${res[skiff.$op]} u=${res[runc.$op]} c=${res[crun.$op]}
        tgt=
        case $op in
            run) label="run /bin/true" ;;
            lifecycle) label="create+start+delete" ;;
            conc50) label="50 x run, parallel" tgt=$(target "$s" "$c" "${res[wrap.$op]}" 0.45) ;;
            exec) label="exec /bin/true" tgt=$(target "$s" "$c" "${res[wrap.$op]}" 0.35) ;;
            *) label=$op ;;
        esac
        printf '%-24s %9s %9s %9s %10s %10s  %s\n' "$label" "$(num "$s")" "$(num "$u")" "$(num "$c")" \
            "$(ratio "$s" "$u")" "$(ratio "$s" "$c")" "$tgt"
    done
    [ -n "${bin[base]:-}" ] && print_base
    local r
    r=$(ratio "$floor_run_ms" "$floor_ms")
    printf '%-24s %9s %9s %9s %10s %10s  %s\n' "floor: unshare+exec" "$(num "$floor_ms")" "" "" "" "" \
        "(unshare --pid --mount --uts --ipc --net --fork /bin/true, unwrapped)"
    printf '%-24s %9s %9s %9s %10s %10s  %s\n' "floor: the bundle's" "$(num "$bfloor_ms")" "" "" "" "" \
        "(examples/floor.rs: the bundle's system calls, no runtime; $(ratio "$bfloor_ms" "$floor_ms") x unshare)"
    printf '%-24s %9s %9s %9s %10s %10s  %s\n' "run /bin/true, unwrapped" "$(num "$floor_run_ms")" "" "" "" "" \
        "skiff/floor = $r <= 1.5: $(mark "$r" 1.5); skiff/bundle's floor = $(ratio "$floor_run_ms" "$bfloor_ms")"
    local c50net
    c50net=$(echo "${res[crun.conc50]} - ${res[wrap.conc50]:-0}" | bc 2>/dev/null)
    printf '%-24s %9s %9s %9s %10s %10s  %s\n' "50 x bundle's floor" "$(num "$bfloor50_ms")" "" "" "" "" \
        "in parallel, unwrapped; skiff unwrapped $(num "$floor_run50_ms") = $(ratio "$floor_run50_ms" "$bfloor50_ms") x; the floor is $(ratio "$bfloor50_ms" "$c50net") of crun's net 50 x run"
    echo "where skiff's run goes (median ms of 15 traced runs, from the previous mark to each; SKIFF_TRACE=1):"
    awk '{ printf "%s %s%s", $1, $2, (NR % 6 ? ", " : "\n") } END { if (NR % 6) print "" }' "$work/phases" | sed 's/^/  /'
}

# print_base: the BASE binary's row beside skiff's, each against crun (net
# of the wrapper, paid once per runtime call; `-` where the wrapper's
# measured cost exceeds the runtime's), and skiff against it, gross: both
# pay the same wrapper, so the wrapper only draws that ratio toward 1.
print_base() {
    local op b s c w
    echo "BASE=${bin[base]} ($(file -bL "${bin[base]}" | cut -d, -f1-2,4-5)), interleaved with the rows above:"
    printf '%-24s %9s %9s %14s %14s %11s\n' operation base skiff "base/crun net" "skiff/crun net" "skiff/base"
    for op in "${ops[@]}"; do
        b=${res[base.$op]:-} s=${res[skiff.$op]:-} c=${res[crun.$op]:-} w=${res[wrap.$op]:-}
        # create+start+delete pays the wrapper once per call.
        [ -n "$w" ] && w=$(echo "$(calls "$op") * $w" | bc)
        printf '%-24s %9s %9s %14s %14s %11s\n' "$op" "$(num "$b")" "$(num "$s")" "$(net "$b" "$c" "$w")" \
            "$(net "$s" "$c" "$w")" "$(ratio "$s" "$b")"
    done
}

# tiny_true FILE: a 129-byte static x86-64 ELF that only calls exit(0).
# The peak RSS of `run` is the maximum over the runtime and every process it
# reaps, the container's program included, and busybox's `true` alone peaks
# at about 1.3 MB: with it, the row would measure busybox, not the runtime.
tiny_true() {
    printf '\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x3e\x00\x01\x00\x00\x00\x78\x00\x40\x00\x00\x00\x00\x00\x40\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x40\x00\x38\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x05\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x40\x00\x00\x00\x00\x00\x00\x00\x40\x00\x00\x00\x00\x00\x81\x00\x00\x00\x00\x00\x00\x00\x81\x00\x00\x00\x00\x00\x00\x00\x00\x10\x00\x00\x00\x00\x00\x00\xb8\x3c\x00\x00\x00\x31\xff\x0f\x05' >"$1"
    chmod 755 "$1"
}

# rss_rows: /usr/bin/time inside the wrapper: the maximum over the runtime
# and every process it reaps (its stages, and the container's program, here
# tiny_true); the median of 5. Busybox's own `true` is printed beside it.
rss_rows() {
    local n tcmd i v bb
    cp -r "$work/bundle" "$work/tiny"
    tiny_true "$work/tiny/rootfs/tiny-true"
    set_args "$work/tiny" /tiny-true
    for n in "${names[@]}"; do
        rss[$n]="n/a"
        [ -n "${bin[$n]}" ] || continue
        mkdir -p "$work/root-$n"
        tcmd="/usr/bin/time -f %M ${bin[$n]} --root $work/root-$n run --bundle $work/tiny rss\$\$"
        if wrapped "$n"; then tcmd="$wrap_sh $tcmd"; fi
        v=()
        for i in 1 2 3 4 5; do
            if sh -c "$tcmd" >/dev/null 2>"$work/time" </dev/null; then
                v+=("$(tail -n 1 "$work/time")")
            fi
        done
        if [ ${#v[@]} -eq 0 ]; then rss[$n]=failed; continue; fi
        rss[$n]=$(printf '%s\n' "${v[@]}" | sort -n | sed -n "$(((${#v[@]} + 1) / 2))p")
    done
    bb=$(/usr/bin/time -f %M "$work/bundle/rootfs/bin/true" 2>&1 >/dev/null | tail -n 1)
    echo
    echo "peak RSS (KiB, median of 5) of \`run\` of a 129-byte static true: the runtime's own processes; busybox true alone: $bb KiB"
    printf '%-24s %9s %9s %9s %10s %10s  %s\n' "peak RSS of run (KiB)" "${rss[skiff]}" "${rss[runc]}" "${rss[crun]}" \
        "$(ratio "${rss[skiff]}" "${rss[runc]}")" "$(ratio "${rss[skiff]}" "${rss[crun]}")" \
        "skiff <= 1200 KiB (1.2 MB): $(mark "${rss[skiff]}" 1200)"
    [ -n "${bin[base]:-}" ] && printf '%-24s %9s %9s %9s  %s\n' "peak RSS, BASE (KiB)" "${rss[base]}" "" "" \
        "skiff/base $(ratio "${rss[skiff]}" "${rss[base]}")"
    for n in "${names[@]}"; do
        [ -n "${bin[$n]}" ] && printf 'binary %-6s %9s bytes  %s\n' "$n" "$(stat -L -c %s "${bin[$n]}")" "$(file -bL "${bin[$n]}" | cut -d, -f1-2,4-5)"
    done
}

# --- scale: many containers alive under one root -----------------------
scale_n=${SCALE_N:-1000}
scale_levels=(0 100 250 500 1000)
[ "$scale_n" = 1000 ] || scale_levels=(0 $((scale_n / 10)) $((scale_n / 4)) $((scale_n / 2)) "$scale_n")
scale_k=${SCALE_SAMPLES:-11}
# state takes half a millisecond, so that its rows' fastest-of-11 moved by
# +-30% with the machine's noise: it is sampled 5 times as often.
scale_state_k=$((scale_k * 5))
declare -A sc

# scale_rt RUNTIME: the runtime with the scale root (unwrapped: skiff and
# runc handle the hybrid layout; crun is left out).
scale_rt() { echo "${bin[$1]} --root $work/scale-$1"; }

# median of the numbers on stdin.
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }
# record RUNTIME OP LEVEL [FILE]: the fastest and the median of FILE
# (default $work/m) into sc.
record() {
    local f=${4:-$work/m}
    sc[$1.$2.$3]=$(sort -n "$f" | head -n 1) sc[$1.$2.med.$3]=$(median <"$f")
}

# ms_of CMD...: runs CMD (no shell) and prints its wall time in ms.
ms_of() {
    local t0 t1
    t0=$EPOCHREALTIME
    "$@" >/dev/null 2>>"$work/scale-err" </dev/null || echo "failed: $*" >>"$work/scale-err"
    t1=$EPOCHREALTIME
    echo "($t1 - $t0) * 1000" | bc -l
}

scale_delete_all() {
    local r
    r=$(scale_rt "$1")
    [ -d "$work/scale-$1" ] || return 0
    ls "$work/scale-$1" | xargs -r -P 16 -n 1 $r delete --force
}

# scale_runtime RUNTIME: fills the root level by level (untimed, 4 in
# parallel), then at each level times SCALE_SAMPLES creates and lists and 5
# times as many states (the fastest and the median); then deletes everything
# in parallel.
scale_runtime() {
    local n=$1 r alive=0 lvl i f
    r=$(scale_rt "$n")
    mkdir -p "$work/scale-$n"
    : >"$work/scale-err"
    for lvl in "${scale_levels[@]}"; do
        if [ "$lvl" -gt "$alive" ]; then
            seq "$alive" $((lvl - 1)) | xargs -P 4 -I{} $r create --bundle "$work/sleeper" "$n-f{}" 2>>"$work/scale-err"
            alive=$lvl
        fi
        if [ "$alive" = 0 ]; then
            $r create --bundle "$work/sleeper" "$n-f0" 2>>"$work/scale-err"
            alive=1
        fi
        # skiff's creates alternate with the bundle's floor's (examples/floor.rs)
        # at this level, so that a change of load hits both alike; the
        # floor's are removed again so that the population stays skiff's.
        local fl=
        [ "$n" = skiff ] && [ -n "${floor_bin:-}" ] && fl=1
        : >"$work/mf"
        for i in $(seq "$scale_k"); do
            ms_of $r create --bundle "$work/sleeper" "$n-s$lvl-$i"
            [ -z "$fl" ] || ms_of "$floor_bin" create "$work/sleeper/rootfs" "$work/root-floor" "fs$lvl-$i" /bin/sleep 100000 >>"$work/mf"
        done >"$work/m"
        record "$n" create "$lvl"
        if [ -n "$fl" ]; then
            record floor create "$lvl" "$work/mf"
            for i in $(seq "$scale_k"); do "$floor_bin" delete "$work/root-floor" "fs$lvl-$i" 2>>"$work/scale-err"; done
        fi
        for i in $(seq "$scale_state_k"); do ms_of $r state "$n-f0"; done >"$work/m"
        record "$n" state "$lvl"
        for i in $(seq "$scale_k"); do ms_of $r list; done >"$work/m"
        record "$n" list "$lvl"
    done
    # CPU time of one list at the top level (user + system, perf's
    # task-clock): what the load of a shared machine does not inflate.
    sc[$n.list.cpu]=$(perf stat -x, -e task-clock $r list 2>&1 >/dev/null | awk -F, '/task-clock/ { print $1 }')
    local total before
    total=$(ls "$work/scale-$n" | wc -l)
    before=$(wc -l <"$work/scale-err")
    f=$(ms_of scale_delete_all "$n")
    sc[$n.delete]=$f
    sc[$n.delete_n]=$total
    sc[$n.delete_err]=$(($(wc -l <"$work/scale-err") - before))
    sc[$n.delete_left]=$(ls "$work/scale-$n" | wc -l)
    sc[$n.errors]=$before
    # A second baseline at zero, after the delete, shows the drift of load.
    for i in $(seq "$scale_k"); do ms_of $r create --bundle "$work/sleeper" "$n-z-$i"; done >"$work/m"
    sc[$n.create.again]=$(sort -n "$work/m" | head -n 1)
    scale_delete_all "$n" >/dev/null 2>&1
}

# svg_plot FILE: three panels (create, list, state ms against containers
# alive), one line per runtime, written by hand.
svg_plot() {
    local file=$1 p x0 col=0 n lvl max v pts i color
    local W=900 H=320 pw=260 ph=220 top=40
    {
        printf '<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">\n' $W $H
        printf '<rect width="100%%" height="100%%" fill="white"/>\n'
        printf '<text x="10" y="18" font-size="14">skiff vs runc: latency (ms, fastest of %s) against containers alive under one --root (%s)</text>\n' "$scale_k" "$(date -u +%F)"
        for p in create list state; do
            x0=$((50 + col * 295))
            max=0
            for n in skiff runc; do
                for lvl in "${scale_levels[@]}"; do
                    v=${sc[$n.$p.$lvl]:-}
                    [ -n "$v" ] && max=$(echo "if ($v > $max) $v else $max" | bc -l)
                done
            done
            max=$(echo "if ($max <= 0) 1 else $max * 1.1" | bc -l)
            printf '<text x="%d" y="%d">%s (max %.1f ms)</text>\n' "$x0" $((top - 4)) "$p" "$max"
            printf '<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#888"/>\n' "$x0" $top $pw $ph
            for lvl in "${scale_levels[@]}"; do
                printf '<text x="%.1f" y="%d" text-anchor="middle" font-size="10">%s</text>\n' \
                    "$(echo "$x0 + $pw * $lvl / $scale_n" | bc -l)" $((top + ph + 14)) "$lvl"
            done
            printf '<text x="%d" y="%d" font-size="10">0</text>\n' $((x0 - 12)) $((top + ph))
            for n in skiff runc; do
                [ "$n" = skiff ] && color="#d04010" || color="#1060c0"
                pts=
                for lvl in "${scale_levels[@]}"; do
                    v=${sc[$n.$p.$lvl]:-}
                    [ -n "$v" ] || continue
                    pts+="$(echo "$x0 + $pw * $lvl / $scale_n" | bc -l),$(echo "$top + $ph - $ph * $v / $max" | bc -l) "
                done
                [ -n "$pts" ] && printf '<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>\n' "$color" "$pts"
            done
            col=$((col + 1))
        done
        printf '<text x="50" y="%d" fill="#d04010">skiff</text><text x="100" y="%d" fill="#1060c0">runc</text><text x="150" y="%d">x: containers alive</text>\n' \
            $((H - 20)) $((H - 20)) $((H - 20))
        echo '</svg>'
    } >"$file"
}

scale_rows() {
    local n lvl r0 r1
    for n in skiff runc; do
        [ -n "${bin[$n]}" ] && scale_runtime "$n"
    done
    echo
    echo "scale: ms, fastest of $scale_k (of $scale_state_k for state; the median in parentheses), with N containers alive (created, init waiting) under one --root; load average $(load)"
    printf '%-8s %17s %17s %17s %17s %17s %17s %17s\n' alive "create skiff" "create runc" "list skiff" "list runc" "state skiff" "state runc" "bundle's floor"
    cell() { printf '%s (%s)' "$(num "${sc[$1.$2.$3]:-}")" "$(num "${sc[$1.$2.med.$3]:-}")"; }
    for lvl in "${scale_levels[@]}"; do
        printf '%-8s %17s %17s %17s %17s %17s %17s %17s\n' "$lvl" "$(cell skiff create "$lvl")" "$(cell runc create "$lvl")" \
            "$(cell skiff list "$lvl")" "$(cell runc list "$lvl")" "$(cell skiff state "$lvl")" "$(cell runc state "$lvl")" \
            "$(cell floor create "$lvl")"
    done
    echo "  (bundle's floor: examples/floor.rs create, the kernel's share of a create, at the same level)"
    printf '%-8s %17s %17s   (creates after deleting all: the drift of load over the run)\n' "0 again" \
        "$(num "${sc[skiff.create.again]:-}")" "$(num "${sc[runc.create.again]:-}")"
    local top=${scale_levels[-1]}
    r1=$(ratio "${sc[skiff.create.$top]:-}" "${sc[skiff.create.0]:-}")
    printf '%-40s %8s  target <= 1.1: %s\n' "skiff create, $top alive / none" "$r1" "$(mark "$r1" 1.1)"
    printf '%-40s %8s  (the kernel alone; skiff - floor: %s ms at none, %s ms at %s)\n' "bundle's floor create, $top alive / none" \
        "$(ratio "${sc[floor.create.$top]:-}" "${sc[floor.create.0]:-}")" \
        "$(num "$(echo "${sc[skiff.create.0]:-0} - ${sc[floor.create.0]:-0}" | bc)")" \
        "$(num "$(echo "${sc[skiff.create.$top]:-0} - ${sc[floor.create.$top]:-0}" | bc)")" "$top"
    printf '%-40s %8s  target < 50 ms: %s (runc: %s ms)\n' "skiff list, $top alive (ms)" "$(num "${sc[skiff.list.$top]:-}")" \
        "$(mark "${sc[skiff.list.$top]:-}" 50)" "$(num "${sc[runc.list.$top]:-}")"
    printf '%-40s %8s  (runc: %s ms)\n' "skiff list, $top alive, CPU ms" "$(num "${sc[skiff.list.cpu]:-}")" "$(num "${sc[runc.list.cpu]:-}")"
    r0=$(ratio "${sc[skiff.state.$top]:-}" "${sc[skiff.state.0]:-}")
    printf '%-40s %8s  target unchanged (<= 1.1): %s\n' "skiff state, $top alive / none" "$r0" "$(mark "$r0" 1.1)"
    for n in skiff runc; do
        [ -n "${sc[$n.delete]:-}" ] || continue
        printf '%-40s %8s  %s errors, %s left; target no error: %s\n' "$n delete --force of all ${sc[$n.delete_n]}, 16 parallel (ms)" \
            "$(num "${sc[$n.delete]}")" "${sc[$n.delete_err]}" "${sc[$n.delete_left]}" \
            "$([ "${sc[$n.delete_err]}${sc[$n.delete_left]}" = 00 ] && echo ok || echo MISS)"
        [ "${sc[$n.errors]}" = 0 ] || echo "  $n: ${sc[$n.errors]} errors before the delete (first: $(head -n 1 "$work/scale-err"))"
    done
    mkdir -p "$out_dir"
    svg_plot "$out_dir/scale.svg"
    echo "plot: $out_dir/scale.svg"
}

# --- engines: podman and containerd end to end ---------------------------
# engine_images: a busybox rootfs tar (podman import) and an OCI layout tar
# (ctr import), as integration/engines/images.rs makes them, offline.
engine_images() {
    local d=$work/img
    mkdir -p "$d"
    cp -a "$work/bundle/rootfs" "$d/rootfs"
    echo 'root:x:0:' >"$d/rootfs/etc/group"
    tar -C "$d/rootfs" -cf "$d/rootfs.tar" . || return 1
    umoci init --layout "$d/oci" &&
        umoci new --image "$d/oci:latest" &&
        umoci insert --image "$d/oci:latest" "$d/rootfs" / >/dev/null &&
        umoci config --image "$d/oci:latest" --config.cmd sh --config.env PATH=/bin &&
        tar -C "$d/oci" -cf "$d/oci.tar" . || return 1
}

# runtime_logger RUNTIME: a wrapper that logs each call's wall time (ms)
# and verb to $work/rtlog, for the runtime's share of an engine's time.
runtime_logger() {
    local f=$work/timed-$1
    cat >"$f" <<EOF
#!/bin/bash
t0=\$EPOCHREALTIME
${bin[$1]} "\$@"
rc=\$?
t1=\$EPOCHREALTIME
v=
for a in "\$@"; do case \$a in create|start|delete|kill|state|run|exec) v=\$a; break ;; esac; done
echo "\$v \$t0 \$t1" >>$work/rtlog
exit \$rc
EOF
    chmod +x "$f"
    echo "$f"
}

# share_of ENGINE_CMD: runs it ENGINE_RUNS/2 times with the logging wrapper;
# prints "runtime-ms engine-ms calls" (means per engine run).
share_of() {
    local c=$1 k=$(((${ENGINE_RUNS:-10} + 1) / 2)) i t0 t1 tot=0
    : >"$work/rtlog"
    for i in $(seq "$k"); do
        t0=$EPOCHREALTIME
        sh -c "$c" >/dev/null 2>&1 </dev/null
        t1=$EPOCHREALTIME
        tot=$(echo "$tot + ($t1 - $t0) * 1000" | bc -l)
    done
    awk -v k="$k" -v tot="$tot" '{ s += ($3 - $2) * 1000; n++ } END { printf "%.2f %.2f %.1f\n", s / k, tot / k, n / k }' "$work/rtlog"
}

# engine_row NAME CMD_TEMPLATE: CMD_TEMPLATE has RT for the runtime path.
engine_row() {
    local label=$1 tmpl=$2 n c cmds=() who=() m i
    declare -A er
    for n in "${names[@]}"; do
        [ "$n" = base ] && continue
        er[$n]=failed
        [ -n "${bin[$n]}" ] || { er[$n]="n/a"; continue; }
        c=${tmpl//RT/${bin[$n]}}
        if ! sh -c "$c" >/dev/null 2>"$work/err" </dev/null; then
            er[$n]="failed"
            echo "$label with $n: $(grep -m1 -iE 'error|fail' "$work/err" | head -c 240)" >&2
            continue
        fi
        cmds+=("$c") who+=("$n")
    done
    mapfile -t m < <(means "${ENGINE_RUNS:-10}" "${cmds[@]}")
    for i in "${!who[@]}"; do er[${who[i]}]=${m[i]:-failed}; done
    printf '%-24s %9s %9s %9s %10s %10s\n' "$label" "$(num "${er[skiff]}")" "$(num "${er[runc]}")" "$(num "${er[crun]}")" \
        "$(ratio "${er[skiff]}" "${er[runc]}")" "$(ratio "${er[skiff]}" "${er[crun]}")"
    for n in "${names[@]}"; do
        case ${er[$n]:-} in *[!0-9.]* | '') continue ;; esac
        local s e k
        read -r s e k < <(share_of "${tmpl//RT/$(runtime_logger "$n")}")
        printf '    %-5s runtime calls %s per run, %s ms of the engine'"'"'s %s ms (%s%%; logged by a timing wrapper)\n' \
            "$n" "$k" "$s" "$e" "$(echo "scale=0; 100 * $s / $e" | bc -l 2>/dev/null)"
    done
}

podman_row() {
    local d=$work/pm
    mkdir -p "$d"
    cat >"$d/containers.conf" <<EOF
[containers]
netns = "none"
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$d/events.log"
tmp_dir = "$d/tmp"
runtime_supports_json = ["crun", "runc", "skiff"]
EOF
    local pm="CONTAINERS_CONF=$d/containers.conf $wrap_sh podman --root $d/root --runroot $d/runroot --storage-driver overlay"
    sh -c "$pm import $work/img/rootfs.tar localhost/busybox" >/dev/null 2>"$work/err" ||
        { echo "podman import: $(head -c 200 "$work/err")" >&2; return 1; }
    engine_cleanup+=(podman_cleanup)
    engine_row "podman run --rm true" "$pm --runtime RT run --rm --cgroup-parent=/skiff-bench-pm localhost/busybox true"
}
podman_cleanup() {
    sh -c "CONTAINERS_CONF=$work/pm/containers.conf $wrap_sh podman --root $work/pm/root --runroot $work/pm/runroot --storage-driver overlay system reset -f" >/dev/null 2>&1
    # conmon's cgroups go under the parent too: deepest first.
    find /sys/fs/cgroup/*/skiff-bench-pm -depth -type d -exec rmdir {} + 2>/dev/null
}

ctr_row() {
    local d=$work/ctd
    mkdir -p "$d"
    cat >"$d/config.toml" <<EOF
version = 2
root = "$d/root"
state = "$d/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = "$d/c.sock"
[ttrpc]
  address = "$d/c.sock.ttrpc"
[debug]
  address = "$d/debug.sock"
[metrics]
  address = ""
EOF
    # The shims put their sockets in /run/containerd/s: removed afterwards
    # (when empty) unless it was there before.
    [ -e /run/containerd ] && run_ctd_existed=1
    # containerd and its shims in the private mount namespace, so crun works.
    sh -c "exec $wrap_sh containerd --config $d/config.toml" >"$d/log" 2>&1 &
    ctd_pid=$!
    engine_cleanup+=(ctr_cleanup)
    local ctr="ctr -a $d/c.sock -n skiff-bench" i
    for i in $(seq 100); do $ctr version >/dev/null 2>&1 && break; sleep 0.1; done
    $ctr images import --index-name localhost/busybox:latest "$work/img/oci.tar" >/dev/null 2>"$work/err" ||
        { echo "ctr import: $(head -c 200 "$work/err")" >&2; return 1; }
    engine_row "ctr run --rm true" "$ctr run --rm --runc-binary RT --runc-root $d/runc-root --fifo-dir $d/fifo localhost/busybox:latest e\$\$ true"
}
ctr_cleanup() {
    [ -n "${ctd_pid:-}" ] || return 0
    pkill -P "$ctd_pid" 2>/dev/null
    kill "$ctd_pid" 2>/dev/null
    wait "$ctd_pid" 2>/dev/null
    find /sys/fs/cgroup/*/skiff-bench -depth -type d -exec rmdir {} + 2>/dev/null
    [ -n "${run_ctd_existed:-}" ] || rmdir /run/containerd/s /run/containerd 2>/dev/null
}

engine_rows() {
    echo
    echo "engines end to end: mean ms ($((${ENGINE_RUNS:-10} / rounds < 2 ? 2 : ${ENGINE_RUNS:-10} / rounds)) runs x $rounds interleaved rounds; engine and runtimes in one private mount namespace without $unified); load average $(load)"
    printf '%-24s %9s %9s %9s %10s %10s\n' engine skiff runc crun skiff/runc skiff/crun
    engine_images >/dev/null 2>"$work/err" || { echo "engine images: $(head -c 200 "$work/err")"; return; }
    podman_row
    ctr_row
}

# --- skiff's own machinery -------------------------------------------------
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
sect() {
    local hex
    hex=$(readelf -SW "$SKIFF" | awk -v s="$1" '{ for (i = 1; i < NF; i++) if ($i == s) print $(i + 4) }')
    echo $((16#${hex:-0}))
}
machinery_rows() {
    echo
    echo "skiff machinery (ms: fastest of $((runs * 3)) runs with seal minus without; sizes of $SKIFF)"
    mkdir -p "$work/root-skiff"
    printf '%-44s %8s\n' "seal, root (entry: read-only bind + exec)" "$(num "$(seal_ms "$SKIFF --root $work/root-skiff")")"
    printf '%-44s %8s\n' "seal, unprivileged (memfd copy + exec)" \
        "$(num "$(seal_ms "setpriv --reuid nobody --regid nogroup --clear-groups $SKIFF --root $work/none")")"
    printf '%-44s %8s\n' ".text bytes" "$(sect .text)" ".rela.dyn bytes (SKIFF_NO_LAYOUT: all here)" "$(sect .rela.dyn)" \
        ".relr.dyn bytes (packed relocations)" "$(sect .relr.dyn)" "binary bytes" "$(stat -L -c %s "$SKIFF")"
}

# Seccomp: BPF size (the kernel allows 4096 instructions per filter) and
# compile time of Docker's default profile, from an ignored unit test.
seccomp_rows() {
    echo
    cargo test -q --bin skiff bench_docker_profile -- --ignored --nocapture 2>/dev/null |
        grep '^seccomp' || echo "seccomp docker-default: failed"
}

if want core; then core_rows && print_core; fi
want rss && rss_rows
want scale && scale_rows
want engines && engine_rows
want machinery && machinery_rows
want seccomp && seccomp_rows
echo
echo "done: $(date -u +%FT%TZ), load average $(load)"
