#!/usr/bin/env bash
# duogate bootstrap: install what is missing, safe to run again.
#
# Called first by `npm run demo`, `npm test` and `npm run bench`, as root, from
# the repo root, on Debian 12 or 13 with git, Node >= 20 and npm (README: Quick start).
#   1. Debian packages: checked with dpkg-query; apt runs only if one is missing.
#   2. Host copies of daemons the packages auto-start are stopped and disabled
#      (duogate runs its own instances inside network namespaces).
#   3. `npm ci` when node_modules is missing or package-lock.json is newer than
#      node_modules/.duogate-stamp (runs node-gyp + `tap build` via scripts).
#   4. `npm run build` (asc core + tsc host).
set -euo pipefail

# Debian packages the virtual board, the firmware and the tests need:
#   iproute2/nftables/conntrack/conntrackd/procps: kernel plumbing and state sync
#   iputils-ping/tcpdump/tshark/socat/bind9-dnsutils: probing and capture in tests
#   kea-dhcp4-server/kea-dhcp6-server/unbound/mosquitto(+clients): services duogate runs per node
#   ucarp: reference CARP implementation for interop tests; tmux: demo panes
#   busybox: udhcpc, the DHCP client the gateway tests run in the LAN client
#   isc-dhcp-client: test tool only, `dhclient -6`, the DHCPv6 client of test/e2e/dhcp6.test.ts
#   make/g++/python3: node-gyp (native addon), usually already present
#   ca-certificates: npm ci's TLS to the registry (Debian's nodejs only recommends it)
# bind9-dnsutils (dig) is the real package on both releases; Debian 13 dropped the
# transitional dnsutils.
PACKAGES="iproute2 nftables conntrack openssl iputils-ping tcpdump tshark kea-dhcp4-server kea-dhcp6-server unbound mosquitto mosquitto-clients socat ucarp conntrackd tmux bind9-dnsutils procps make g++ python3 busybox ca-certificates isc-dhcp-client"

# Services from those packages that auto-start on install; must not run on the host.
HOST_SERVICES="kea-dhcp4-server kea-dhcp6-server unbound mosquitto conntrackd"

log() { echo "bootstrap: $*"; }
die() { echo "bootstrap: FAILED: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (network namespaces, raw sockets, apt); try: sudo $0"

cd "$(dirname "$0")/.." || die "cannot cd to repo root"
[ -f package.json ] || die "package.json not found in $(pwd)"
# Node >= 20 (package.json engines). Debian 12's own nodejs is 18: there, install
# Node 20+ from elsewhere (README: Quick start); Debian 13's nodejs is 20.
command -v node >/dev/null || die "node not found: install Node >= 20 and npm (Debian 13: apt-get install nodejs npm; see README, Quick start)"
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null) || die "node does not run: $(command -v node)"
[ "$node_major" -ge 20 ] 2>/dev/null \
  || die "node $(node -v) at $(command -v node) is too old: duogate needs Node >= 20 (Debian 12's nodejs is 18; see README, Quick start)"
command -v npm >/dev/null || die "npm not found: install npm (Debian: apt-get install npm)"

# ---- 1. Debian packages -------------------------------------------------------
missing=""
for p in $PACKAGES; do
  # Status "install ok installed" only; half-configured/removed counts as missing.
  st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$st" = "install ok installed" ] || missing="$missing $p"
done
missing="${missing# }"

if [ -n "$missing" ]; then
  log "installing Debian packages: $missing"
  export DEBIAN_FRONTEND=noninteractive
  # tshark asks whether non-root users may capture; answer "no" up front.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections \
    || die "debconf-set-selections (wireshark-common answer)"
  apt-get update -q >/dev/null || die "apt-get update"
  # shellcheck disable=SC2086
  apt-get install -y -q --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold $missing \
    || die "apt-get install $missing"
  disable_services=1
else
  log "Debian packages: all present"
  disable_services=0
fi

# ---- 2. host services off ---------------------------------------------------
# Always checked (cheap), so a host copy started by hand or by an earlier install
# is stopped too.
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
  for s in $HOST_SERVICES; do
    if systemctl list-unit-files "$s.service" >/dev/null 2>&1 \
       && { systemctl is-enabled --quiet "$s" 2>/dev/null || systemctl is-active --quiet "$s" 2>/dev/null; }; then
      log "disabling host service $s"
      systemctl disable --now "$s" >/dev/null 2>&1 || die "systemctl disable --now $s"
    fi
  done
else
  # No systemd (container): services only run if an init script started them.
  for s in $HOST_SERVICES; do
    if [ -x "/etc/init.d/$s" ] && [ "$disable_services" = 1 ]; then
      "/etc/init.d/$s" stop >/dev/null 2>&1 || true
    fi
  done
fi

# ---- 3. node_modules ------------------------------------------------------------
STAMP=node_modules/.duogate-stamp
if [ ! -d node_modules ] || [ ! -f "$STAMP" ] || [ package-lock.json -nt "$STAMP" ]; then
  log "npm ci (node_modules missing or package-lock.json changed)"
  npm ci --no-fund --no-audit || die "npm ci"
  touch "$STAMP" || die "writing $STAMP"
else
  log "node_modules up to date"
fi

# ---- 4. build ------------------------------------------------------------------
# The addon is built by npm ci's install script; sources changed since (a pull, a merge) need it built again.
if [ -n "$(find host/addon binding.gyp -newer build/Release/duogate.node 2>/dev/null | head -1)" ] || [ ! -f build/Release/duogate.node ]; then
  log "native addon sources changed: node-gyp rebuild"
  npx --no-install node-gyp rebuild >/dev/null 2>&1 || die "node-gyp rebuild (run it by hand to see why)"
fi
log "building (asc core + tsc host)"
npm run build --silent || die "npm run build"
log "done"
