#!/usr/bin/env bash
# Builds the Debian package of the agent (eid-agent_<version>-1_<arch>.deb) with cargo-deb and
# prints its path on stdout (everything else goes to stderr).
#
# - cargo-deb is installed when missing or not the pinned version (one `cargo install`, a few
#   minutes the first time; CI caches ~/.cargo/bin like the rest of the toolchain).
# - The binary is built with the release profile, not a profile of its own: the benchmarks in
#   scripts/test.sh already build eid-agent and its dependencies in release mode (the bench
#   profile shares target/release), so here only what changed since is recompiled. A dedicated
#   profile would compile every dependency a second time.
# - The man pages come from the CLI itself (`eid-agent man`, hidden), gzipped reproducibly into
#   target/packaging/man, where agent/Cargo.toml's [package.metadata.deb] assets take them.
# - `cargo deb --no-build` then only assembles the package (control, maintainer scripts from
#   packaging/debian/, $auto dependencies through dpkg-shlibdeps, stripped binary).
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_DEB_VERSION=3.8.0

log() { echo "build-deb: $*" >&2; }

if [ "$(cargo deb --version 2>/dev/null)" != "$CARGO_DEB_VERSION" ] &&
  [ "$(cargo deb --version 2>/dev/null)" != "cargo-deb $CARGO_DEB_VERSION" ]; then
  log "installing cargo-deb $CARGO_DEB_VERSION (cargo install --locked)"
  cargo install --quiet --locked --version "$CARGO_DEB_VERSION" cargo-deb >&2
fi

target_dir=$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
if [ "$target_dir" != "$PWD/target" ]; then
  # The man page asset path in agent/Cargo.toml is relative to the workspace (../target/...).
  log "note: CARGO_TARGET_DIR is $target_dir; the man pages still go to $PWD/target/packaging/man"
fi

# A version bump needs its changelog entry (lintian: the package's changelog.Debian.gz).
version=$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "eid-agent"))')
changelog_version=$(dpkg-parsechangelog -l packaging/debian/changelog -S Version)
if [ "$changelog_version" != "$version-1" ]; then
  log "packaging/debian/changelog starts with $changelog_version, the package is $version-1: add an entry (dch -v $version-1)"
  exit 1
fi

log "building eid-agent (release profile)"
cargo build --quiet --release -p eid-agent --bin eid-agent >&2

man_dir=target/packaging/man
log "writing the man pages into $man_dir"
rm -rf "$man_dir"
"$target_dir/release/eid-agent" man --out "$man_dir" >&2
# -n: no name or timestamp in the gzip header, so the same pages give the same bytes.
gzip -9n "$man_dir"/*.1

log "assembling the package (cargo deb --no-build)"
# cargo-deb prints the path of the package it wrote as its last line on stdout.
deb=$(cargo deb --quiet -p eid-agent --no-build | tail -n 1)
if [ ! -f "$deb" ]; then
  log "cargo deb did not report a package file (got: '$deb')"
  exit 1
fi
echo "$deb"
