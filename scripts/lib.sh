# Shared helpers for scripts/*.sh (sourced, not run).

# apt_need PKG CMD: installs PKG with apt when CMD is missing (as root only).
apt_need() {
    local pkg=$1 cmd=$2
    if command -v "$cmd" >/dev/null 2>&1 || [ -e "$cmd" ]; then
        return 0
    fi
    if [ "$(id -u)" -ne 0 ]; then
        echo "warning: $cmd is missing and we are not root: install $pkg yourself" >&2
        return 0
    fi
    echo "installing $pkg (for $cmd)" >&2
    if [ -z "${APT_UPDATED:-}" ]; then
        apt-get update -qq >&2
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -o DPkg::Lock::Timeout=600 -y -qq "$pkg" >&2
}

# apt_need_qemu: installs qemu-system-x86 (for qemu-system-x86_64) as root,
# from the same suite as whatever qemu packages are already installed. Some
# images ship qemu-utils from bookworm-backports, which Breaks bookworm's
# qemu-system-common: there, the backports source is added (once) and the
# system emulator comes from backports too. Idempotent.
apt_need_qemu() {
    command -v qemu-system-x86_64 >/dev/null 2>&1 && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "warning: qemu-system-x86_64 is missing and we are not root" >&2
        return 0
    fi
    local ver suite codename target=()
    ver=$(dpkg-query -W -f='${Version}' qemu-utils qemu-system-common qemu-block-extra 2>/dev/null | head -1 || true)
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
    case "$ver" in
        *bpo*)
            suite="$codename-backports"
            if ! grep -rqs -- "$suite" /etc/apt/sources.list /etc/apt/sources.list.d/; then
                echo "adding the $suite apt source (the installed qemu packages come from it)" >&2
                printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
                    "$suite" >"/etc/apt/sources.list.d/skiff-$suite.sources"
                APT_UPDATED=
            fi
            target=(-t "$suite")
            ;;
    esac
    if [ -z "${APT_UPDATED:-}" ]; then
        apt-get update -qq >&2
        APT_UPDATED=1
    fi
    echo "installing qemu-system-x86 ${target[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -o DPkg::Lock::Timeout=600 -y -qq --no-install-recommends "${target[@]}" qemu-system-x86 >&2
}

# static_target: prints the target triple of skiff's static release build:
# x86_64-unknown-linux-musl when rustup has that target or can add it, else
# x86_64-unknown-linux-gnu (with crt-static: static_build passes it). musl's
# start-up runs no `cpuid`; a static glibc's runs 68 here (its cache
# detection), each a VM exit under a hypervisor: about 0.5 ms of every
# skiff command on this machine (README.md, Benchmark). SKIFF_TARGET=triple
# chooses. Offline, `rustup target add` fails and the glibc build is used:
# both are supported (Makefile does the same choice, without the add).
static_target() {
    local musl=x86_64-unknown-linux-musl have
    if [ -n "${SKIFF_TARGET:-}" ]; then
        echo "$SKIFF_TARGET"
        return 0
    fi
    have=$(rustup target list --installed 2>/dev/null || true)
    case "$have" in *"$musl"*) echo "$musl"; return 0 ;; esac
    if command -v rustup >/dev/null 2>&1 && timeout 120 rustup target add "$musl" >&2; then
        echo "$musl"
    else
        echo "static_target: no $musl target; building with static glibc" >&2
        echo x86_64-unknown-linux-gnu
    fi
}

# static_build TRIPLE [CARGO_ARGS...]: cargo build --release of the static
# binary for TRIPLE (from static_target), into target/TRIPLE/release/.
static_build() {
    local t=$1
    shift
    RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" cargo build --release --target "$t" "$@"
}

# busybox_bin: prints the path of a static busybox.
busybox_bin() {
    for b in /bin/busybox /usr/bin/busybox; do
        if [ -x "$b" ]; then echo "$b"; return 0; fi
    done
    return 1
}

# make_bundle RUNTIME DIR: a busybox rootfs in DIR/rootfs and DIR/config.json
# from `RUNTIME spec`, made non-interactive (terminal=false).
make_bundle() {
    local rt=$1 dir=$2 bb
    bb=$(busybox_bin) || { echo "static busybox not found" >&2; return 1; }
    mkdir -p "$dir/rootfs/bin" "$dir/rootfs/proc" "$dir/rootfs/sys" "$dir/rootfs/dev" "$dir/rootfs/tmp" "$dir/rootfs/etc"
    cp "$bb" "$dir/rootfs/bin/busybox"
    for a in $("$bb" --list); do
        [ "$a" = busybox ] || ln -sf busybox "$dir/rootfs/bin/$a"
    done
    echo 'root:x:0:0:root:/root:/bin/sh' >"$dir/rootfs/etc/passwd"
    rm -f "$dir/config.json"
    "$rt" spec --bundle "$dir"
    set_config "$dir" '.process.terminal = false'
}

# set_config DIR JQ_FILTER [jq args...]: edits DIR/config.json with jq.
set_config() {
    local dir=$1 filter=$2
    shift 2
    jq "$filter" "$dir/config.json" "$@" >"$dir/config.json.new"
    mv "$dir/config.json.new" "$dir/config.json"
}

# set_args DIR ARG...: sets process.args.
set_args() {
    local dir=$1
    shift
    # Not `jq --args`: jq would take a "-c" among the args as its own flag.
    local arr='[]' a
    for a in "$@"; do
        arr=$(jq -c --arg x "$a" '. + [$x]' <<<"$arr")
    done
    set_config "$dir" '.process.args = $a' --argjson a "$arr"
}
