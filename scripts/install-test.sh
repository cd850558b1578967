#!/usr/bin/env bash
# The README's install, checked: `make` (static release build), then
# `make install` into a scratch DESTDIR, and the tree it leaves: a static
# binary that runs, every man page, completion scripts that are the
# installed binary's own and load into bash and zsh and complete; then
# `make uninstall` leaves no file behind.
# Usage: bash scripts/install-test.sh   (scripts/test.sh runs it)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

apt_need make make
apt_need file file
apt_need zsh zsh
apt_need bash-completion /usr/share/bash-completion/bash_completion

fail() {
    echo "install-test: $*" >&2
    exit 1
}

# need CMD: true if CMD is there; apt_need installed it as root, so only
# a non-root run may lack it (and says so).
need() {
    command -v "$1" >/dev/null 2>&1 || [ -e "$1" ] && return 0
    [ "$(id -u)" -ne 0 ] || fail "$1 is missing"
    echo "install-test: $1 is missing (not root, not installed): its checks are not run" >&2
    return 1
}

make --no-print-directory static >&2
dest=$(mktemp -d /tmp/skiff-install.XXXXXX)
trap 'rm -rf "$dest"' EXIT
make --no-print-directory install DESTDIR="$dest" PREFIX=/usr/local >&2

bin=$dest/usr/local/sbin/skiff
[ -x "$bin" ] || fail "no executable $bin"
size=$(du -k "$bin" | cut -f1)
"$bin" --version | grep -q '^skiff version ' || fail "$bin --version: $("$bin" --version 2>&1)"
# Static: no interpreter, nothing for the dynamic loader to do.
kind=$(file -b "$bin")
case $kind in
    *"static-pie linked"* | *"statically linked"*) ;;
    *) fail "not a static binary: $kind" ;;
esac
if ldd "$bin" >/dev/null 2>&1 && ! ldd "$bin" 2>&1 | grep -q 'statically linked'; then
    fail "ldd lists libraries: $(ldd "$bin" 2>&1)"
fi

man8=$dest/usr/local/share/man/man8
for page in man/*.8; do
    cmp -s "$page" "$man8/$(basename "$page")" || fail "$page not installed in $man8"
done
# A page per subcommand of the installed binary (its --help's COMMANDS).
for cmd in $("$bin" --help | sed -n '/^COMMANDS:/,/^$/p' | awk 'NR > 1 && NF { sub(",", "", $1); print $1 }'); do
    [ "$cmd" = help ] || [ -f "$man8/skiff-$cmd.8" ] || fail "no man page for $cmd"
done
if command -v man >/dev/null; then
    MANWIDTH=80 man -l "$man8/skiff-completion.8" 2>/dev/null | grep -q 'completion script' ||
        fail "skiff-completion.8 does not render"
fi

bashc=$dest/usr/local/share/bash-completion/completions/skiff
zshc=$dest/usr/local/share/zsh/site-functions/_skiff
# The installed scripts are the installed binary's own.
cmp -s "$bashc" <("$bin" completion bash) || fail "$bashc is not '$bin completion bash'"
cmp -s "$zshc" <("$bin" completion zsh) || fail "$zshc is not '$bin completion zsh'"
# bash-completion finds it where it looks under $PREFIX/share (its
# XDG_DATA_DIRS), and it completes: a command, and create's --bundle.
if need /usr/share/bash-completion/bash_completion; then
got=$(XDG_DATA_DIRS=$dest/usr/local/share BASH_COMPLETION_USER_DIR=$dest/none bash --norc -c '
    . /usr/share/bash-completion/bash_completion
    __load_completion skiff && complete -p skiff >/dev/null || exit 1
    COMP_WORDS=(skiff cr); COMP_CWORD=1; _skiff; echo "${COMPREPLY[*]}"
    COMP_WORDS=(skiff create --bun); COMP_CWORD=2; _skiff; echo "${COMPREPLY[*]}"')
[ "$got" = $'create\n--bundle' ] || fail "bash completion from $bashc: $got"
fi
# zsh autoloads it from the installed site-functions directory.
if need zsh; then
zsh -n "$zshc" || fail "$zshc: zsh syntax"
work=$(mktemp -d "$dest/zsh.XXXXXX")
got=$(zsh -f integration/fixtures/complete.zsh "$(dirname "$zshc")" "$(dirname "$bin")" "$work" 'skiff list --format=' | sort -u | tr '\n' ' ')
[ "$got" = "json table " ] || fail "zsh completion from $zshc: $got"
rm -rf "$work"
fi

make --no-print-directory uninstall DESTDIR="$dest" PREFIX=/usr/local >&2
left=$(find "$dest" -type f)
[ -z "$left" ] || fail "make uninstall left: $left"
echo "install-test: ok (static binary: $size KiB)" >&2
