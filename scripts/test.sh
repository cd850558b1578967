#!/usr/bin/env bash
# The whole test suite: unit tests, then the integration tests against the
# skiff binary. As root, root-only tests are required (REQUIRE_ROOT_TESTS=1):
# a skip is a failure, so a green run cannot hide skipped tests.
# Usage: bash scripts/test.sh   (extra args go to cargo test)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

apt_need busybox-static /bin/busybox
apt_need runc runc
# Rootless tests: newuidmap/newgidmap; setpriv and useradd are in essential packages.
apt_need uidmap newuidmap
# integration/seal.rs: which code re-executes to seal the binary.
apt_need strace strace
# integration/completion.rs loads `skiff completion zsh` into a real zsh.
apt_need zsh zsh
# integration/criu.rs: checkpoint/restore's failure paths on this host.
apt_need criu criu
# The engines of the `engines` test target (integration/engines/).
apt_need containerd containerd
apt_need umoci umoci
apt_need podman podman
apt_need docker.io dockerd
apt_need buildah buildah
# The CRI test's client (integration/engines/cri/client.py) and the
# README's RuntimeClass it parses.
if [ "$(id -u)" -eq 0 ] && ! python3 -c 'import grpc, grpc_tools, yaml' 2>/dev/null; then
    python3 -m pip install -q grpcio grpcio-tools pyyaml >&2
fi
if [ "$(id -u)" -eq 0 ]; then
    export REQUIRE_ROOT_TESTS=1 REQUIRE_ENGINES=1
fi
# The static release build's target, chosen once for every script below
# (lib.sh: musl when rustup has it or can add it, else glibc).
SKIFF_TARGET=$(static_target)
export SKIFF_TARGET
echo "static builds: $SKIFF_TARGET" >&2
cargo test --all-targets "$@"
# The fuzz target compiles skiff's modules in place (fuzz/): keep it building.
if cargo +nightly --version >/dev/null 2>&1; then
    cargo +nightly build --quiet --manifest-path fuzz/Cargo.toml
fi
# The release link layout (build.rs, link/hot.order) is an optimisation:
# keep the build without it (SKIFF_NO_LAYOUT=1, e.g. GNU ld) from rotting.
SKIFF_NO_LAYOUT=1 CARGO_TARGET_DIR=target/nolayout cargo build --quiet --release
target/nolayout/release/skiff --version | grep -q '^skiff version '
# The README's install: `make` (static release), `make install` into a
# scratch DESTDIR, the tree checked (static binary, man pages, completions
# that load and complete), `make uninstall` (scripts/install-test.sh).
bash scripts/install-test.sh
# The integration tests again, against that static release binary (the
# one users install; musl's C library when SKIFF_TARGET is musl) instead
# of the debug build cargo test drives: about 40 s.
RUNTIME=$PWD/target/$SKIFF_TARGET/release/skiff cargo test --test integration "$@"
# Differential testing against runc and crun (scripts/difftest.sh): 100
# generated configs from a fixed seed, run by the debug binary just built
# (about a minute); any difference not in scripts/difftest/explained.json
# fails the suite.
if [ "$(id -u)" -eq 0 ]; then
    SKIFF=$PWD/target/debug/skiff bash scripts/difftest.sh 100 1
fi
# Pure cgroup v2 inside a small VM (this host is v1 hybrid): see scripts/vm/run.sh.
if [ "$(id -u)" -eq 0 ]; then
    bash scripts/vm/run.sh
fi
# systemd as PID 1 in a Debian bookworm VM (scripts/vm/debian.sh): every
# scripts/vm/debian-checks/*.sh on pure cgroup v2, then those marked
# `# vm: hybrid` on the v1 hybrid layout.
if [ "$(id -u)" -eq 0 ]; then
    bash scripts/vm/debian.sh
    VM_CGROUP=hybrid bash scripts/vm/debian.sh
fi
