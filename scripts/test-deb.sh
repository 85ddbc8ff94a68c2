#!/usr/bin/env bash
# The Debian package end to end, as root (CI runs as root): builds it (scripts/build-deb.sh),
# installs it with dpkg, checks that its files are where the package says, that the man page is
# found, that the systemd user unit is enabled for every user, and that the installed
# `eid-agent doctor --json` runs and prints a well-formed report; then purges it and checks that
# nothing of it remains (its files, the unit's symlink, deb-systemd-helper's state, and what
# postrm deletes on purge: /etc/eid-agent, /var/lib/eid-agent).
#
# It installs and purges a real package on this machine, so it refuses to run where eid-agent is
# already known to dpkg (a developer's real installation) or where /etc/eid-agent,
# /var/lib/eid-agent or the global unit symlink already exist, unless EID_TEST_DEB_FORCE=1.
set -euo pipefail
cd "$(dirname "$0")/.."

pkg=eid-agent
wants=/etc/systemd/user/default.target.wants/eid-agent.service
unit=/usr/lib/systemd/user/eid-agent.service
dsh_state=/var/lib/systemd/deb-systemd-user-helper-enabled

fail() {
  echo "test-deb: FAILED: $*" >&2
  exit 1
}
say() { echo "test-deb: $*"; }

# dpkg's path-exclude filters (minimal container images drop /usr/share/man and /usr/share/doc):
# a path they exclude is listed by dpkg -L but not on disk, and that is not the package's fault.
mapfile -t excludes < <(cat /etc/dpkg/dpkg.cfg /etc/dpkg/dpkg.cfg.d/* 2>/dev/null | sed -n 's/^path-exclude[= ]//p')
mapfile -t includes < <(cat /etc/dpkg/dpkg.cfg /etc/dpkg/dpkg.cfg.d/* 2>/dev/null | sed -n 's/^path-include[= ]//p')
excluded() {
  local glob
  for glob in "${includes[@]}"; do
    # shellcheck disable=SC2053 # the right side is a glob on purpose
    [[ $1 == $glob ]] && return 1
  done
  for glob in "${excludes[@]}"; do
    [[ $1 == $glob ]] && return 0
  done
  return 1
}

[ "$(id -u)" = 0 ] || fail "must run as root (it installs and purges the package with dpkg)"

status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
if [ "${EID_TEST_DEB_FORCE:-}" != 1 ]; then
  if [ -n "$status" ] && [ "$status" != not-installed ]; then
    fail "$pkg is already known to dpkg (status: $status); this test would replace and purge it." \
      "Set EID_TEST_DEB_FORCE=1 to run it anyway."
  fi
  for p in /etc/eid-agent /var/lib/eid-agent "$wants"; do
    if [ -e "$p" ] || [ -L "$p" ]; then
      fail "$p exists (an installation from source?); the purge would delete it." \
        "Set EID_TEST_DEB_FORCE=1 to run anyway."
    fi
  done
fi

work=$(mktemp -d -t eid-test-deb.XXXXXX)
installed=""
cleanup() {
  # A failed check must not leave the package installed.
  if [ -n "$installed" ]; then
    dpkg --purge "$pkg" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

start=$(date +%s)
deb=$(./scripts/build-deb.sh)
built=$(date +%s)
say "built $deb in $((built - start)) s"
dpkg-deb --info "$deb" | sed -n '/Package:/,$p'
dpkg-deb --contents "$deb"

echo "-- dpkg -i"
installed=yes
if ! dpkg -i "$deb"; then
  say "dpkg -i failed; installing missing dependencies with apt-get -f install"
  DEBIAN_FRONTEND=noninteractive apt-get -f install -y -q
fi
[ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg")" = "ii " ] || fail "$pkg is not installed and configured"

echo "-- files"
dpkg -L "$pkg" >"$work/files"
while IFS= read -r path; do
  [ -e "$path" ] || [ -L "$path" ] || excluded "$path" || fail "dpkg -L lists $path but it is not on disk"
done <"$work/files"
for path in /usr/bin/eid-agent "$unit" /etc/xdg/autostart/eid-agent.desktop \
  /usr/share/man/man1/eid-agent.1.gz /usr/share/doc/eid-agent/README.md \
  /usr/share/doc/eid-agent/bridge-openapi.json /usr/share/doc/eid-agent/copyright; do
  grep -qxF "$path" "$work/files" || fail "the package does not ship $path"
done
[ -x /usr/bin/eid-agent ] || fail "/usr/bin/eid-agent is not executable"
[ "$(dpkg -S /usr/bin/eid-agent | cut -d: -f1)" = "$pkg" ] || fail "/usr/bin/eid-agent is not the package's"
grep -qx 'ExecStart=/usr/bin/eid-agent run' "$unit" || fail "$unit does not start /usr/bin/eid-agent run"
if ! excluded /usr/share/doc/eid-agent/bridge-openapi.json; then
  python3 -c 'import json, sys; json.load(open(sys.argv[1]))' /usr/share/doc/eid-agent/bridge-openapi.json ||
    fail "the shipped bridge-openapi.json is not valid JSON"
fi
say "$(wc -l <"$work/files") paths from dpkg -L present"

echo "-- man page"
page=/usr/share/man/man1/eid-agent.1.gz
if excluded "$page"; then
  say "dpkg's configuration excludes $page from installation (minimal image); checked it is in the package"
elif command -v man >/dev/null 2>&1; then
  found=$(man -w eid-agent) || fail "man -w eid-agent finds no page"
  [ "$found" = "$page" ] || fail "man -w eid-agent gives $found, not the package's $page"
  MANWIDTH=80 man -l "$page" 2>/dev/null >"$work/man.txt"
  grep -q 'SYNOPSIS' "$work/man.txt" && grep -q 'doctor' "$work/man.txt" ||
    fail "the man page does not render with a synopsis and the subcommands"
  say "man -w eid-agent: $page ($(ls /usr/share/man/man1/eid-agent*.1.gz | wc -l) pages, rendered)"
else
  gzip -t "$page" || fail "$page is not a valid gzip file"
  zcat "$page" | grep -q '^\.TH' || fail "$page is not a roff man page"
  say "man-db is not installed: $page is there and is a roff page"
fi

echo "-- systemd user unit enabled for every user"
[ -L "$wants" ] || fail "$wants is missing: the unit is not enabled globally"
[ "$(readlink "$wants")" = "$unit" ] || fail "$wants points to $(readlink "$wants"), not $unit"
if command -v systemctl >/dev/null 2>&1; then
  state=$(systemctl --global is-enabled eid-agent.service 2>&1 || true)
  [ "$state" = enabled ] || fail "systemctl --global is-enabled eid-agent.service: $state"
fi
say "$wants -> $(readlink "$wants")"

echo "-- eid-agent doctor --json (the installed binary, in an empty HOME)"
mkdir -p "$work/home"
rc=0
HOME="$work/home" XDG_CONFIG_HOME="$work/home/.config" XDG_STATE_HOME="$work/home/.local/state" \
  /usr/bin/eid-agent doctor --json >"$work/doctor.json" 2>"$work/doctor.err" || rc=$?
cat "$work/doctor.json"
[ -s "$work/doctor.err" ] && { echo "(stderr)"; cat "$work/doctor.err"; }
case "$rc" in
0 | 1) ;;
*) fail "eid-agent doctor --json exited with $rc (0: all checks passed, 1: a check failed; anything else is a crash or a usage error)" ;;
esac
python3 - "$work/doctor.json" "$rc" <<'PY' || fail "eid-agent doctor --json did not print a well-formed report"
import json, sys

report = json.load(open(sys.argv[1]))
rc = int(sys.argv[2])
assert isinstance(report, dict), "not a JSON object"
assert isinstance(report.get("ok"), bool), "no boolean 'ok'"
checks = report.get("checks")
assert isinstance(checks, list) and checks, "no 'checks' list"
ids = set()
for c in checks:
    assert isinstance(c.get("id"), str) and c["id"], f"check without id: {c}"
    assert c.get("status") in ("ok", "warning", "failed", "skipped"), f"bad status: {c}"
    assert isinstance(c.get("summary"), str) and c["summary"], f"check without summary: {c}"
    if c["status"] == "failed":
        assert c.get("remedy"), f"failed check without a remedy: {c}"
    ids.add(c["id"])
expected = {"pcscd", "readers", "port", "leaf-certificate", "config"}
missing = expected - ids
assert not missing, f"checks missing: {sorted(missing)}"
failed = [c["id"] for c in checks if c["status"] == "failed"]
assert report["ok"] == (not failed), f"ok={report['ok']} but failed checks: {failed}"
assert (rc == 0) == report["ok"], f"exit code {rc} with ok={report['ok']}"
print(f"test-deb: doctor: {len(checks)} checks, ok={report['ok']}, failed: {failed or 'none'}")
PY

echo "-- what eid-agent install --system leaves for purge (files as it writes them)"
mkdir -p /etc/eid-agent/tls /var/lib/eid-agent
printf '# Managed by eid-agent install --system\nallow = ["https://desk.example"]\n' >/etc/eid-agent/policy.toml
for f in ca.pem localhost.pem localhost-key.pem; do echo test >"/etc/eid-agent/tls/$f"; done
echo '{}' >/var/lib/eid-agent/install-manifest.json

echo "-- dpkg --purge"
dpkg --purge "$pkg"
installed=""
status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
[ -z "$status" ] || [ "$status" = not-installed ] || fail "after the purge dpkg still knows $pkg ($status)"
while IFS= read -r path; do
  if [ -L "$path" ] || [ -f "$path" ]; then
    fail "$path is still there after the purge"
  fi
  if [ -d "$path" ]; then
    # dpkg keeps a directory another package owns or something else put files in; an empty
    # directory nobody owns would be ours, left behind.
    if [ -z "$(ls -A "$path")" ] && ! dpkg -S "$path" >/dev/null 2>&1; then
      fail "the empty directory $path is left behind"
    fi
  fi
done <"$work/files"
for p in "$wants" /etc/eid-agent /var/lib/eid-agent /usr/share/doc/eid-agent; do
  if [ -e "$p" ] || [ -L "$p" ]; then fail "$p is still there after the purge"; fi
done
if [ -d "$dsh_state" ] && [ -n "$(find "$dsh_state" -name '*eid-agent*')" ]; then
  fail "deb-systemd-helper still has state for eid-agent: $(find "$dsh_state" -name '*eid-agent*')"
fi
say "purged: none of the $(wc -l <"$work/files") paths, the unit symlink, /etc/eid-agent or /var/lib/eid-agent remain"
say "ok in $(($(date +%s) - start)) s (build $((built - start)) s)"
