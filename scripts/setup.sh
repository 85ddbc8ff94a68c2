#!/usr/bin/env bash
# Installs what building and testing the agent needs on Debian 12, and nothing when it is all
# there already. Needs root or sudo for apt-get.
set -euo pipefail

packages=(
  pcscd              # the PC/SC daemon every Linux desktop runs
  vsmartcard-vpcd    # virtual reader driver: puts our virtual cards behind the real pcscd
  libpcsclite-dev    # headers and libpcsclite for the pcsc crate
  pkg-config
  libssl-dev         # openssl crate
  pcsc-tools         # pcsc_scan, for people debugging a reader
  opensc             # pkcs15-tool / pkcs11-tool: the external check of the virtual Citizen Card
  pinentry-curses    # the agent's consent and PIN dialogs on a terminal (desktops: pinentry-gnome3)
  curl               # HTTP/2 checks of the bridge, and the demo's status call
  openssl            # the demo's desk operator password
  chromium           # the browser tests of the bridge (headless)
  postgresql         # the enrolment store's tests also run on PostgreSQL (SQLite is the default)
  libnss3-tools      # certutil: eid-agent install registers the local CA in NSS databases
  ca-certificates    # update-ca-certificates: the system trust store (install --system)
  dbus-daemon        # dbus-run-session: the tray icon's tests run on a private session bus
  dpkg-dev           # dpkg-shlibdeps and dpkg-parsechangelog: building the .deb with cargo-deb
  libnfc-dev         # libnfc 1.8: the NFC transport (eid-card feature `nfc`, on by default)
  libnfc-bin         # nfc-list, nfc-scan-device: people debugging an NFC reader
  libnfc-examples    # nfc-poll: the PN532 emulator's tests drive it against the real libnfc
  clang              # bindgen (nfc1-sys) generates libnfc's bindings at build time
  libclang-dev
)
# The JS client's unit tests need Node.js (any version with `node --test`, 18+); the machine's
# own is used when there is one.
command -v node >/dev/null || packages+=(nodejs)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

command -v cargo >/dev/null || { echo "setup: cargo not found: install the Rust toolchain (rustup)" >&2; exit 1; }
