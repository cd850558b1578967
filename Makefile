# Build and install skiff. cargo builds; this only names the release build
# and puts its files where runc's Makefile puts runc's.
#
#   make                     static release binary (as a user)
#   sudo make install        binary, man pages, bash and zsh completions
#   sudo make uninstall
#
# PREFIX, BINDIR, MANDIR and DESTDIR as runc's Makefile has them (runc goes
# to /usr/local/sbin). The completion scripts are written at install time by
# the binary being installed (`skiff completion bash|zsh`, from its own
# option tables), so they cannot drift from it; none is checked in.

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/sbin
MANDIR ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR ?= $(PREFIX)/share/zsh/site-functions
DESTDIR ?=

CARGO ?= cargo
# Static, for the target named explicitly: --target keeps crt-static away
# from the host's proc-macros (see Cargo.toml and scripts/bench.sh). The
# release profile and build.rs (link/hot.order, RELR) apply as for any
# release build. musl when rustup has its target (`rustup target add
# x86_64-unknown-linux-musl`: its start-up runs no cpuid, see
# scripts/lib.sh, static_target), else glibc; TARGET=... (or the
# scripts' SKIFF_TARGET) chooses.
MUSL := x86_64-unknown-linux-musl
TARGET ?= $(or $(SKIFF_TARGET),$(if $(filter $(MUSL),$(shell rustup target list --installed 2>/dev/null)),$(MUSL),x86_64-unknown-linux-gnu))
BIN := target/$(TARGET)/release/skiff
MANPAGES := $(wildcard man/*.8)

.PHONY: all static install install-bin install-man install-completions uninstall

all: static

static:
	RUSTFLAGS="$(RUSTFLAGS) -C target-feature=+crt-static" $(CARGO) build --release --target $(TARGET)

# Like runc's, install does not build: `make` as a user, then install as
# root, so that target/ never gets root-owned files.
install: install-bin install-man install-completions

install-bin:
	@test -x $(BIN) || { echo "$(BIN) is missing: run 'make' first" >&2; exit 1; }
	install -D -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/skiff

install-man:
	install -d -m 0755 $(DESTDIR)$(MANDIR)/man8
	install -m 0644 $(MANPAGES) $(DESTDIR)$(MANDIR)/man8

install-completions:
	@test -x $(BIN) || { echo "$(BIN) is missing: run 'make' first" >&2; exit 1; }
	install -d -m 0755 $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR)
	$(BIN) completion bash > $(DESTDIR)$(BASHCOMPDIR)/skiff.tmp
	mv $(DESTDIR)$(BASHCOMPDIR)/skiff.tmp $(DESTDIR)$(BASHCOMPDIR)/skiff
	chmod 0644 $(DESTDIR)$(BASHCOMPDIR)/skiff
	$(BIN) completion zsh > $(DESTDIR)$(ZSHCOMPDIR)/_skiff.tmp
	mv $(DESTDIR)$(ZSHCOMPDIR)/_skiff.tmp $(DESTDIR)$(ZSHCOMPDIR)/_skiff
	chmod 0644 $(DESTDIR)$(ZSHCOMPDIR)/_skiff

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/skiff
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man8/,$(notdir $(MANPAGES)))
	rm -f $(DESTDIR)$(BASHCOMPDIR)/skiff $(DESTDIR)$(ZSHCOMPDIR)/_skiff
