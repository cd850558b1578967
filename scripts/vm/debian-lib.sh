# Helpers for the checks of the Debian systemd VM (scripts/vm/debian.sh).
# Inside the VM this file is /skiff/lib.sh; every check starts with it
# already sourced (BASH_ENV), and sourcing it again is harmless.
# POSIX sh apart from `local`, which bash, dash and busybox sh all have.

SKIFF=${SKIFF:-/skiff/bin/skiff}
SKIFF_BUSYBOX=/skiff/bin/busybox
export SKIFF

pass() { echo "PASS $1"; }

fail() {
    local name=$1
    shift
    echo "FAIL $name: $*"
}

skip() {
    local name=$1
    shift
    echo "SKIP $name: $*"
}

info() { echo "INFO $*"; }

# check NAME CMD...: runs CMD; PASS when it exits 0, else FAIL with the
# last lines of its output (joined with " | ").
check() {
    local name=$1 out rc
    shift
    out=$("$@" 2>&1) && rc=0 || rc=$?
    if [ "$rc" -eq 0 ]; then
        pass "$name"
    else
        out=$(printf '%s\n' "$out" | tail -5 | tr '\n' '|' | sed 's/|$//; s/|/ | /g')
        fail "$name" "status $rc${out:+: $out}"
    fi
    return "$rc"
}

# mkrootfs DIR: a busybox root in DIR (busybox, applet symlinks, /tmp, /etc/passwd).
# A copy of /skiff/rootfs, which debian.sh prepares on the host: making
# the 400 applet links here, one fork each, takes ~7 s under TCG.
mkrootfs() {
    local r=$1 a
    if [ -d /skiff/rootfs ]; then
        mkdir -p "$r" && cp -a /skiff/rootfs/. "$r/"
        return
    fi
    mkdir -p "$r/bin" "$r/proc" "$r/sys" "$r/dev" "$r/tmp" "$r/etc" "$r/root"
    chmod 1777 "$r/tmp"
    cp "$SKIFF_BUSYBOX" "$r/bin/busybox"
    for a in $("$SKIFF_BUSYBOX" --list); do
        [ "$a" = busybox ] || ln -sf busybox "$r/bin/$a"
    done
    echo 'root:x:0:0:root:/root:/bin/sh' >"$r/etc/passwd"
    echo 'root:x:0:' >"$r/etc/group"
}

# mkbundle DIR CMD...: an OCI bundle in DIR: busybox rootfs, config.json
# from `$SKIFF spec` with process.args = CMD... and terminal = false.
mkbundle() {
    local dir=$1 args='[]' a
    shift
    mkrootfs "$dir/rootfs" || return 1
    rm -f "$dir/config.json"
    "$SKIFF" spec --bundle "$dir" || return 1
    # Not `jq --args`: jq 1.6 would take a "-c" among CMD as its own flag.
    for a in "$@"; do
        args=$(printf '%s' "$args" | jq -c --arg x "$a" '. + [$x]') || return 1
    done
    jq --argjson a "$args" '.process.args = $a | .process.terminal = false' \
        "$dir/config.json" >"$dir/config.json.new" || return 1
    mv "$dir/config.json.new" "$dir/config.json"
}

# busybox_image: the busybox root as podman image localhost/busybox:latest
# (imported once; later calls find it).
busybox_image() {
    podman image exists localhost/busybox:latest 2>/dev/null && return 0
    local d
    d=$(mktemp -d) || return 1
    mkrootfs "$d" || { rm -rf "$d"; return 1; }
    tar -C "$d" -cf - . | podman import --quiet --change 'CMD ["/bin/sh"]' - localhost/busybox:latest >/dev/null
    local rc=$?
    rm -rf "$d"
    return "$rc"
}
