#!/usr/bin/env bash
# Boots a Debian bookworm root with systemd as PID 1 under qemu (TCG: KVM
# does not work here) and runs check scripts inside it, as root, against a
# static skiff. The host prints the checks' PASS/FAIL/SKIP/INFO lines and a
# closing "debian-vm: N passed, M failed"; it exits non-zero if any check
# failed or the VM did not finish them.
#
# Usage: scripts/vm/debian.sh [CHECK_SCRIPT...]   (as root; installs what it needs with apt)
#   SKIFF_BIN=/abs/static/skiff  the skiff to test (default: a static release
#                                build of this repository, as scripts/vm/run.sh does)
#   VM_CGROUP=v2|hybrid          v2 (default): pure cgroup v2; hybrid: v1
#                                controllers + systemd (systemd.unified_cgroup_hierarchy=0)
#   VM_EXTRA=/abs/dir            optional: copied into the VM as /skiff/extra
#   VM_TIMEOUT=900               seconds before qemu is killed (a hang fails)
#   VM_CHECK_TIMEOUT=600         seconds one check script may take
#   VM_KERNEL_ARGS=...           extra kernel command line (e.g. systemd.log_level=debug)
#   VM_QEMU_ARGS=...             extra qemu arguments (word-split)
#   VM_KERNEL=/boot/vmlinuz-...  the guest kernel (default: the newest 6.1 in /boot); its
#                                /lib/modules go into the image (part of the cache key)
#   VM_DEBIAN_INITRD=1           boot with Debian's initrd instead of the small one made here
#   VM_KEEP=1                    keep the run's temp dir (console.log, checks.log) and say where
#   SKIFF_VM_CACHE=/var/cache/skiff-vm   where the root image is cached
#
# With no CHECK_SCRIPT it runs scripts/vm/debian-checks/*.sh (sorted); with
# VM_CGROUP=hybrid only those of them that carry a line `# vm: hybrid` (the
# marker convention: a check that wants to run on the v1 hybrid layout too
# says so with that comment line). Scripts named on the command line always run.
#
# Inside the VM: /skiff/bin/{skiff,busybox}, /skiff/lib.sh (scripts/vm/debian-lib.sh:
# SKIFF, pass, fail, skip, info, check, mkbundle, busybox_image; already
# sourced when a check starts, through BASH_ENV), /skiff/checks/NN-name.sh.
# The checks' output goes to the second serial port (ttyS1); the systemd
# console (ttyS0) is shown when the VM did not finish.
#
# The root image (mmdebstrap minbase + systemd, dbus, criu, podman,
# containerd, ...; the host's 6.1 kernel modules) is built once and cached
# under $SKIFF_VM_CACHE as debian-HASH.img, HASH being a hash of the recipe
# (the package list and build_image below), so a recipe change rebuilds it.
# A flock serialises the build; each boot writes to its own qcow2 overlay in
# a temporary directory, so concurrent callers are safe and the cache stays
# pristine.
set -euo pipefail

# ---------------------------------------------------------------- the image
# Everything that decides the image's content is in PACKAGES and
# build_image: both are hashed into the cache key.
PACKAGES=systemd,systemd-sysv,dbus,kmod,criu,podman,conmon,containerd,runc,jq,iproute2,procps,util-linux,ca-certificates,e2fsprogs,iptables,strace

# build_image DIR: fills DIR (an empty directory) with the root tree.
build_image() {
    local root=$1
    mmdebstrap --quiet --variant=minbase --include="$PACKAGES" \
        --aptopt='APT::Install-Recommends "false"' \
        --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/locale/*' \
        bookworm "$root" http://deb.debian.org/debian
    mkdir -p "$root/lib/modules"
    cp -a "/lib/modules/$kver" "$root/lib/modules/$kver"
    rm -rf "$root/var/cache/apt"/*.bin "$root/var/lib/apt/lists"/*_Packages
    echo skiff-vm >"$root/etc/hostname"
    # No udev (a minbase root without Recommends has none, and its coldplug
    # is slow under TCG): no device units to wait for either, so nothing in
    # fstab; the kernel mounts / rw and skiff-checks mounts /dev/vdb.
    : >"$root/etc/fstab"
    mkdir -p "$root/skiff"
    passwd -R "$root" -d root >/dev/null
    # Boot straight to the checks: no gettys, logins, timers, network waits
    # or daemons nobody asked for. containerd is disabled, not masked: the
    # checks that use it `systemctl start containerd`.
    local u
    for u in getty@tty1.service serial-getty@ttyS0.service serial-getty@ttyS1.service \
        getty.target apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer \
        e2scrub_all.timer e2scrub_reap.service fstrim.timer systemd-tmpfiles-clean.timer \
        systemd-timesyncd.service systemd-networkd-wait-online.service \
        networking.service systemd-networkd.service systemd-resolved.service \
        podman-auto-update.timer podman-auto-update.service \
        podman-restart.service podman.socket podman.service \
        podman-clean-transient.service cron.service remote-fs.target \
        systemd-update-utmp.service systemd-update-utmp-runlevel.service \
        systemd-random-seed.service systemd-pstore.service \
        systemd-journal-catalog-update.service systemd-hwdb-update.service \
        ldconfig.service man-db.timer systemd-logind.service; do
        systemctl --root="$root" mask "$u" >/dev/null 2>&1
    done
    systemctl --root="$root" disable containerd.service >/dev/null 2>&1
    # The journal in /run only: no flush to /var on the boot's critical path.
    mkdir -p "$root/etc/systemd/journald.conf.d"
    printf '[Journal]\nStorage=volatile\n' >"$root/etc/systemd/journald.conf.d/skiff.conf"
    systemctl --root="$root" set-default multi-user.target >/dev/null 2>&1
    cat >"$root/usr/local/sbin/skiff-checks" <<'EOF'
#!/bin/bash
# Runs /skiff/checks/*.sh in order (scripts/vm/debian.sh), then powers off.
exec >/dev/ttyS1 2>&1 || exec >/dev/console 2>&1
mount -o ro /dev/vdb /skiff || echo "FAIL debian-vm-payload: cannot mount /dev/vdb on /skiff"
echo "VM: debian checks starting, uptime $(cut -d' ' -f1 /proc/uptime) s, kernel $(uname -r)"
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export SKIFF=/skiff/bin/skiff BASH_ENV=/skiff/lib.sh HOME=/root
per=$(cat /skiff/check-timeout 2>/dev/null || echo 600)
for c in /skiff/checks/*.sh; do
    [ -e "$c" ] || continue
    echo "VM: check $(basename "$c") at uptime $(cut -d' ' -f1 /proc/uptime) s"
    (cd /tmp && timeout -k 10 "$per" bash "$c" </dev/null)
    rc=$?
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        echo "FAIL $(basename "$c"): timed out after $per s"
    fi
done
echo "VM: debian checks finished, uptime $(cut -d' ' -f1 /proc/uptime) s"
sync
systemctl poweroff --force --force
EOF
    chmod 755 "$root/usr/local/sbin/skiff-checks"
    cat >"$root/etc/systemd/system/skiff-checks.service" <<'EOF'
[Unit]
Description=skiff VM checks
Requires=dbus.service
After=dbus.service multi-user.target

[Service]
Type=simple
ExecStart=/usr/local/sbin/skiff-checks
StandardOutput=journal+console
StandardError=journal+console

[Install]
WantedBy=multi-user.target
EOF
    systemctl --root="$root" enable skiff-checks.service >/dev/null 2>&1
}

recipe_hash() {
    { echo "$PACKAGES $kver"; declare -f build_image; } | sha256sum | cut -c1-16
}

# ensure_image: sets $image to the cached root image, building it if needed.
ensure_image() {
    mkdir -p "$cache"
    image="$cache/debian-$(recipe_hash).img"
    exec 9>"$cache/lock"
    if ! flock -n 9; then
        echo "INFO debian-vm: waiting for $cache/lock (another run is building the image)"
        flock 9
    fi
    # Build trees left by a build that was killed (we hold the lock now).
    rm -rf "$cache"/build.*
    if [ ! -f "$image" ]; then
        local t0 build
        t0=$(date +%s)
        echo "INFO debian-vm: building the root image $image (mmdebstrap bookworm)"
        build=$(mktemp -d "$cache/build.XXXXXX")
        if ! (build_image "$build/root" && make_ext4 "$build/root" "$build/img" 1536); then
            rm -rf "$build"
            die "building the root image failed"
        fi
        mv "$build/img" "$image"
        rm -rf "$build"
        echo "INFO debian-vm: image built in $(( $(date +%s) - t0 )) s"
        prune_images
    fi
    ensure_vmlinux
    # A shared lock on the image while it backs an overlay: prune_images
    # only removes images nobody holds.
    exec 8<"$image"
    flock -s 8
    flock -u 9
    exec 9>&-
}

# ensure_vmlinux: sets $boot_kernel to an uncompressed copy of $kernel in
# the cache when the kernel can boot that way (PVH), else to $kernel itself.
# Under TCG, decompressing the 8 MB xz bzImage takes ~6 s of every boot (an
# A/B of boot-to-init: 10-11 s from the bzImage, 4.5 s from the ELF).
# Called with the cache lock held.
ensure_vmlinux() {
    local id off tmp
    boot_kernel=$kernel
    grep -qs '^CONFIG_PVH=y' "/boot/config-$kver" || return 0
    id=$(stat -c %s-%Y "$kernel")
    vmlinux="$cache/vmlinux-$kver-$id"
    if [ ! -f "$vmlinux" ]; then
        rm -f "$cache"/vmlinux-*
        off=$(LC_ALL=C grep -abo $'\xfd7zXZ' "$kernel" | head -1 | cut -d: -f1 || true)
        [ -n "$off" ] || return 0
        tmp="$vmlinux.tmp"
        tail -c +$((off + 1)) "$kernel" | xz -dc --single-stream >"$tmp" 2>/dev/null || true
        if [ "$(head -c 4 "$tmp" | od -An -tx1 | tr -d ' ')" = 7f454c46 ]; then
            mv "$tmp" "$vmlinux"
        else
            rm -f "$tmp"
            return 0
        fi
    fi
    boot_kernel=$vmlinux
}

# make_ext4 DIR IMG EXTRA_MB: an ext4 image of DIR with EXTRA_MB of room.
make_ext4() {
    local dir=$1 img=$2 extra=$3 mb
    mb=$(( $(du -sm "$dir" | cut -f1) * 12 / 10 + extra ))
    truncate -s "${mb}M" "$img"
    mkfs.ext4 -q -F -L skiff -E root_owner=0:0 -O ^has_journal -d "$dir" "$img" >/dev/null
}

# make_initramfs OUT: a small initramfs that mounts /dev/vda and hands over
# to systemd: busybox and the modules for a virtio disk with ext4. Debian's
# initramfs-tools image takes ~16 s under TCG (6 s to unpack 30 MB, 10 s of
# udev); this one ~2 s.
make_initramfs() {
    local out=$1 d m f
    d=$(mktemp -d "$work/initramfs.XXXXXX")
    mkdir -p "$d/bin" "$d/dev" "$d/proc" "$d/root" "$d/modules"
    cp /bin/busybox "$d/bin/busybox"
    for m in virtio_pci virtio_blk crc32c_generic ext4; do
        modprobe -S "$kver" --show-depends "$m" || return 1
    done | awk '$1 == "insmod" && !seen[$2]++ { print $2 }' >"$work/modules.order"
    [ -s "$work/modules.order" ] || return 1
    : >"$d/modules.list"
    while read -r m; do
        f=$(basename "$m")
        case "$m" in
            *.ko) cp "$m" "$d/modules/$f" ;;
            *.ko.xz) f=${f%.xz}; xz -dc "$m" >"$d/modules/$f" ;;
            *.ko.zst) f=${f%.zst}; zstd -qdc "$m" >"$d/modules/$f" ;;
            *) return 1 ;;
        esac
        echo "/modules/$f" >>"$d/modules.list"
    done <"$work/modules.order"
    cat >"$d/init" <<'EOF'
#!/bin/busybox sh
# PID 1 of the initramfs (scripts/vm/debian.sh): mount /dev/vda, exec systemd.
bb=/bin/busybox
$bb mount -t devtmpfs devtmpfs /dev
$bb mount -t proc proc /proc
while read -r m; do $bb insmod "$m" 2>/dev/null; done </modules.list
i=0
while [ ! -b /dev/vda ] && [ "$i" -lt 300 ]; do $bb usleep 100000; i=$((i + 1)); done
if ! $bb mount -t ext4 -o rw,noatime /dev/vda /root; then
    echo "initramfs: cannot mount /dev/vda" >/dev/console
    $bb poweroff -f
fi
$bb umount /proc
$bb mount --move /dev /root/dev
exec $bb switch_root /root /sbin/init
EOF
    chmod 755 "$d/init"
    (cd "$d" && find . | cpio -o -H newc --quiet | gzip -1) >"$out"
}

# need_qemu_img: qemu-utils, from the same suite as the installed qemu
# (apt_need_qemu may have taken qemu-system-x86 from backports).
need_qemu_img() {
    command -v qemu-img >/dev/null 2>&1 && return 0
    local ver target=()
    ver=$(dpkg-query -W -f='${Version}' qemu-system-x86 2>/dev/null || true)
    case "$ver" in
        *bpo*) target=(-t "$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")-backports") ;;
    esac
    DEBIAN_FRONTEND=noninteractive apt-get install -o DPkg::Lock::Timeout=600 -y -qq \
        --no-install-recommends "${target[@]}" qemu-utils >&2
}

# prune_images: removes older recipes' images no boot is using.
prune_images() {
    local old
    for old in "$cache"/debian-*.img; do
        [ "$old" = "$image" ] && continue
        [ -f "$old" ] || continue
        flock -n -x "$old" rm -f "$old" || true
    done
}

# ---------------------------------------------------------------- the run
# All of it in main, called on the last line with exit on the same line:
# bash parses main whole before running it, so editing this file while a
# run is in progress cannot change what that run executes.
main() {
    t_start=$(date +%s)
    here=$(cd "$(dirname "$0")" && pwd)
    repo=$(cd "$here/../.." && pwd)
    . "$repo/scripts/lib.sh"

    die() { echo "debian.sh: $*" >&2; exit 1; }

    cgroup=${VM_CGROUP:-v2}
    case "$cgroup" in
        v2) cg_arg="systemd.unified_cgroup_hierarchy=1" ;;
        hybrid) cg_arg="systemd.unified_cgroup_hierarchy=0 systemd.legacy_systemd_cgroup_controller=0" ;;
        *) die "VM_CGROUP must be v2 or hybrid, not '$cgroup'" ;;
    esac
    vm_timeout=${VM_TIMEOUT:-900}
    check_timeout=${VM_CHECK_TIMEOUT:-600}
    cache=${SKIFF_VM_CACHE:-/var/cache/skiff-vm}
    [ "$(id -u)" -eq 0 ] || die "must run as root (mmdebstrap, mkfs.ext4 -d of a root tree)"

    # The check scripts, validated before anything slow happens.
    checks=()
    if [ $# -gt 0 ]; then
        for c in "$@"; do
            [ -f "$c" ] || die "no such check script: $c"
            checks+=("$(cd "$(dirname "$c")" && pwd)/$(basename "$c")")
        done
    else
        for c in "$here"/debian-checks/*.sh; do
            [ -f "$c" ] || continue
            if [ "$cgroup" = hybrid ] && ! grep -q '^# vm: hybrid$' "$c"; then
                continue
            fi
            checks+=("$c")
        done
    fi
    [ ${#checks[@]} -gt 0 ] || die "no check scripts to run"
    if [ -n "${VM_EXTRA:-}" ]; then
        [ -d "$VM_EXTRA" ] || die "VM_EXTRA is not a directory: $VM_EXTRA"
    fi
    if [ -n "${SKIFF_BIN:-}" ]; then
        [ -x "$SKIFF_BIN" ] || die "SKIFF_BIN is not an executable: $SKIFF_BIN"
    fi

    # bookworm's 6.1 kernel (CRIU 3.17 works there; not on 6.18), installed
    # from apt when /boot has none (a fresh machine running another kernel).
    if [ -z "${VM_KERNEL:-}" ] && ! ls /boot/vmlinuz-6.1.* >/dev/null 2>&1; then
        apt_need linux-image-amd64 /boot/vmlinuz-6.1-missing
    fi
    kernel=${VM_KERNEL:-$(ls /boot/vmlinuz-6.1.* 2>/dev/null | sort -V | tail -1)}
    { [ -n "$kernel" ] && [ -f "$kernel" ]; } || die "no Debian 6.1 kernel in /boot (apt-get install linux-image-amd64 on bookworm)"
    kver=${kernel#/boot/vmlinuz-}
    initrd=/boot/initrd.img-$kver
    if [ -n "${VM_DEBIAN_INITRD:-}" ]; then
        [ -f "$initrd" ] || die "no initrd for $kver: $initrd"
    fi
    [ -d "/lib/modules/$kver" ] || die "no modules for $kver in /lib/modules"

    apt_need_qemu
    apt_need mmdebstrap mmdebstrap
    apt_need busybox-static /bin/busybox
    apt_need e2fsprogs mkfs.ext4
    apt_need util-linux flock
    apt_need cpio cpio
    apt_need kmod modprobe
    need_qemu_img

    ensure_image
    t_image=$(date +%s)

    if [ -n "${SKIFF_BIN:-}" ]; then
        skiff=$SKIFF_BIN
    else
        target=${SKIFF_STATIC_TARGET:-$repo/target}
        t=$(static_target)
        (cd "$repo" && CARGO_TARGET_DIR="$target" static_build "$t" --quiet)
        skiff="$target/$t/release/skiff"
    fi
    if ldd "$skiff" 2>&1 | grep -q '=>'; then
        echo "warning: $skiff is dynamically linked; the VM's glibc may not match" >&2
    fi

    # Temp dirs of runs killed outright (SIGKILL) a day ago or more: no run
    # lives that long (VM_TIMEOUT).
    find /tmp -maxdepth 1 -name 'skiff-debian-vm.*' -mmin +1440 -exec rm -rf {} + 2>/dev/null || true
    work=$(mktemp -d /tmp/skiff-debian-vm.XXXXXX)
    qpid=
    tpid=
    cleanup() {
        [ -n "$qpid" ] && kill "$qpid" 2>/dev/null
        [ -n "$tpid" ] && kill "$tpid" 2>/dev/null
        if [ -n "${VM_KEEP:-}" ]; then
            rm -f "$work/root.qcow2"
            echo "INFO debian-vm: kept $work" >&2
        else
            rm -rf "$work"
        fi
    }
    trap cleanup EXIT
    trap 'exit 130' INT TERM

    # The payload disk: /skiff inside.
    p="$work/payload"
    mkdir -p "$p/bin" "$p/checks"
    cp "$skiff" "$p/bin/skiff"
    cp /bin/busybox "$p/bin/busybox"
    cp "$here/debian-lib.sh" "$p/lib.sh"
    # The busybox root mkrootfs copies (see debian-lib.sh).
    mkdir -p "$p/rootfs/bin" "$p/rootfs/proc" "$p/rootfs/sys" "$p/rootfs/dev" \
        "$p/rootfs/tmp" "$p/rootfs/etc" "$p/rootfs/root"
    chmod 1777 "$p/rootfs/tmp"
    cp /bin/busybox "$p/rootfs/bin/busybox"
    for a in $(/bin/busybox --list); do
        [ "$a" = busybox ] || ln -s busybox "$p/rootfs/bin/$a"
    done
    echo 'root:x:0:0:root:/root:/bin/sh' >"$p/rootfs/etc/passwd"
    echo 'root:x:0:' >"$p/rootfs/etc/group"
    echo "$check_timeout" >"$p/check-timeout"
    echo "$cgroup" >"$p/cgroup"
    i=0
    for c in "${checks[@]}"; do
        cp "$c" "$p/checks/$(printf '%02d' "$i")-$(basename "$c")"
        i=$((i + 1))
    done
    if [ -n "${VM_EXTRA:-}" ]; then
        cp -a "$VM_EXTRA" "$p/extra"
    fi
    make_ext4 "$p" "$work/payload.img" 32

    qemu-img create -q -f qcow2 -b "$image" -F raw "$work/root.qcow2"
    if [ -z "${VM_DEBIAN_INITRD:-}" ]; then
        make_initramfs "$work/initramfs.gz" || die "could not make the initramfs for $kver"
        initrd=$work/initramfs.gz
    fi
    out="$work/checks.log"
    console="$work/console.log"
    : >"$out"
    t_boot=$(date +%s)
    # shellcheck disable=SC2086 # VM_QEMU_ARGS is a list of words
    # No floppy, CD-ROM or VGA for the kernel to probe (-nodefaults);
    # mitigations=off: under TCG, page-table isolation's CR3 switch on every
    # syscall is a TLB flush, and the checks fork and syscall a lot (an A/B
    # boot: kernel 31 s instead of 43, a busybox bundle 2.5 s instead of 9).
    timeout -k 10 "$vm_timeout" qemu-system-x86_64 -accel tcg -m 2048 -smp 2 \
        -nodefaults -vga none -nographic -no-reboot -nic none -device virtio-rng-pci ${VM_QEMU_ARGS:-} \
        -kernel "$boot_kernel" -initrd "$initrd" \
        -append "console=ttyS0 root=/dev/vda rw loglevel=4 mitigations=off panic=-1 fsck.mode=skip systemd.show_status=error $cg_arg ${VM_KERNEL_ARGS:-}" \
        -drive "file=$work/root.qcow2,format=qcow2,if=virtio,cache=unsafe" \
        -drive "file=$work/payload.img,format=raw,if=virtio,readonly=on" \
        -serial "file:$console" -serial "file:$out" -monitor none </dev/null >"$work/qemu.log" 2>&1 &
    qpid=$!
    # The checks' lines as they come (a check can take minutes); tail
    # exits once qemu has, after a last read.
    tail -n +1 -F --pid="$qpid" "$out" 2>/dev/null | sed -u 's/\r$//' |
        grep --line-buffered -E '^(PASS|FAIL|SKIP|INFO)' &
    tpid=$!
    rc=0
    wait "$qpid" || rc=$?
    qpid=
    wait "$tpid" || true
    tpid=
    t_end=$(date +%s)

    clean() { tr -d '\r' <"$1"; }
    passed=$(clean "$out" | grep -c '^PASS' || true)
    failed=$(clean "$out" | grep -c '^FAIL' || true)
    first=$(clean "$out" | sed -n 's/^VM: debian checks starting, uptime \([0-9.]*\).*/\1/p')
    if [ -n "$first" ]; then
        echo "INFO debian-vm: boot to first check ${first%.*} s (guest uptime, VM_CGROUP=$cgroup)"
    fi
    # Each check's duration, from the runner's uptime stamps.
    clean "$out" | awk '
        /^VM: check .* at uptime / { if (name != "") printf "INFO debian-vm: %s took %.0f s\n", name, $(NF-1) - t
                                     name = $3; t = $(NF-1) }
        /^VM: debian checks finished, uptime / { if (name != "") printf "INFO debian-vm: %s took %.0f s\n", name, $(NF-1) - t }'
    # (no grep -q: under pipefail its early exit SIGPIPEs the producer)
    if ! clean "$out" | grep '^VM: debian checks finished' >/dev/null; then
        if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
            echo "FAIL debian-vm: qemu killed after $vm_timeout s"
        else
            echo "FAIL debian-vm: the VM did not finish its checks (qemu status $rc)"
        fi
        echo "--- checks output tail:"
        clean "$out" | tail -20
        echo "--- console tail:"
        clean "$console" | tail -40
        if [ -s "$work/qemu.log" ]; then
            echo "--- qemu:"
            tail -10 "$work/qemu.log"
        fi
        failed=$((failed + 1))
    fi
    echo "INFO debian-vm: image $(( t_image - t_start )) s, boot+checks $(( t_end - t_boot )) s, total $(( t_end - t_start )) s"
    echo "debian-vm: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}

main "$@"; exit $?
