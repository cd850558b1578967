#!/usr/bin/env bash
# Boots a Debian kernel under qemu (TCG: KVM does not work here) with pure
# cgroup v2, runs scripts/vm/checks.sh against a static skiff inside, and
# prints the checks plus a closing "N passed, M failed" line.
# Usage: scripts/vm/run.sh   (as root; installs what it needs with apt)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$repo/scripts/lib.sh"
apt_need_qemu
need=()
ls /boot/vmlinuz-* >/dev/null 2>&1 || need+=(linux-image-amd64)
[ -x /bin/busybox ] || need+=(busybox-static)
command -v cpio >/dev/null || need+=(cpio)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
kernel=$(ls /boot/vmlinuz-* | sort -V | tail -1)
kver=${kernel#/boot/vmlinuz-}

# A static binary: the initramfs has no C library.
target=${SKIFF_STATIC_TARGET:-$repo/target}
t=$(static_target)
(cd "$repo" && CARGO_TARGET_DIR="$target" static_build "$t" --quiet)
skiff="$target/$t/release/skiff"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root="$work/root"
mkdir -p "$root/bin" "$root/bundles" "$root/modules"
cp /bin/busybox "$skiff" "$root/bin/"
cp "$here/init" "$here/checks.sh" "$root/"
# The loop driver, for io.max on a real block device.
loopko=$(find "/lib/modules/$kver" -name 'loop.ko*' | head -1 || true)
case "$loopko" in
    *.ko) cp "$loopko" "$root/modules/" ;;
    *.ko.xz) xz -dc "$loopko" > "$root/modules/loop.ko" ;;
esac
python3 "$here/bundles.py" "$root/bin/skiff" "$root/bundles"

# difftest's v2-only fields, skiff against crun (DIFFTEST_V2=N configs,
# default 20, 0 to skip; DIFFTEST_V2_SEED, default 1): crun and the shared
# libraries it needs go into the initramfs, the bundles into /dt.
dt_n=${DIFFTEST_V2:-20}
dt_seed=${DIFFTEST_V2_SEED:-1}
crun_bin=$(command -v crun || true)
if [ "$dt_n" -gt 0 ] && [ -z "$crun_bin" ]; then
    echo "difftest-v2: crun not installed, skipped" >&2
    dt_n=0
fi
if [ "$dt_n" -gt 0 ]; then
    RUSTFLAGS="-C target-feature=+crt-static" CARGO_TARGET_DIR="$repo/target/observer" \
        cargo build --quiet --release --target x86_64-unknown-linux-gnu --manifest-path "$repo/tools/observer/Cargo.toml"
    cp "$crun_bin" "$root/bin/crun"
    for lib in $(ldd "$crun_bin" | grep -o '/[^ ]*'); do
        mkdir -p "$root$(dirname "$lib")"
        cp -L "$lib" "$root$lib"
    done
    python3 "$repo/scripts/difftest/v2.py" gen "$root/dt" "$dt_n" "$dt_seed" \
        "$repo/target/observer/x86_64-unknown-linux-gnu/release/observer"
    cp "$here/difftest.sh" "$root/"
fi

(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$work/initrd.gz"
log="$work/console.log"
timeout 600 qemu-system-x86_64 -accel tcg -m 1024 -smp 2 -nographic -no-reboot \
    -kernel "$kernel" -initrd "$work/initrd.gz" \
    -append "console=ttyS0 rdinit=/init panic=-1 quiet cgroup_no_v1=all max_loop=4" \
    > "$log" 2>&1 || true
# The console without its CRs, once: `tr | grep -q` under pipefail fails
# when grep stops reading first (tr gets SIGPIPE), a false "did not finish".
tr -d '\r' < "$log" > "$work/console.txt"
log=$work/console.txt
grep -E '^(VM:|PASS|FAIL|SKIP)' "$log" || true
passed=$(grep -c '^PASS' "$log" || true)
failed=$(grep -c '^FAIL' "$log" || true)
if ! grep -q '^VM: checks finished' "$log"; then
    echo "VM did not finish its checks; console log tail:"
    tail -30 "$log"
    failed=$((failed + 1))
fi
if [ "$dt_n" -gt 0 ]; then
    grep '^DTE ' "$log" || true
    if ! grep -q '^VM: difftest finished' "$log"; then
        echo "difftest-v2: the VM did not finish it"
        failed=$((failed + 1))
    fi
    if ! python3 "$repo/scripts/difftest/v2.py" compare "$log" "$dt_n" "$dt_seed"; then
        failed=$((failed + 1))
    fi
fi
echo "cgroup-v2-vm: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
