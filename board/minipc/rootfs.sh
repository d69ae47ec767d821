#!/usr/bin/env bash
# Stage 1 of the image build: a Debian root filesystem tarball (DEBIAN_SUITE, default trixie) from the
# host's mirror. usage: rootfs.sh OUT.tar CACHE_DIR      (run by build.sh, which caches OUT.tar by a hash of
# this file, packages.txt and the suite; ~2 min cold). Recipe and measurements: docs/image.md.
set -euo pipefail
out=$1 cache=$2
here=$(cd "$(dirname "$0")" && pwd)
pkgs=$(grep -v '^\s*#' "$here/packages.txt" | tr -s ' \n' ',' | sed 's/^,//; s/,$//')
suite=${DEBIAN_SUITE:-trixie}
host_sources=/etc/apt/sources.list.d/debian.sources
[ -f "$host_sources" ] || { echo "rootfs: $host_sources not found: the build takes its mirrors from the host's deb822 list" >&2; exit 1; }
# The host's mirrors, the image's suite: the build machine may run another release than the image.
mirror=$(awk '$1=="URIs:" && $2 !~ /security/ { print $2; exit }' "$host_sources")
secmirror=$(awk '$1=="URIs:" && $2 ~ /security/ { print $2; exit }' "$host_sources")
[ -n "$mirror" ] && [ -n "$secmirror" ] || { echo "rootfs: no Debian and Debian security mirror in $host_sources" >&2; exit 1; }
sources=$(mktemp)
trap 'rm -f "$sources"' EXIT
# Debian 12's debian-archive-keyring holds the Debian 13 keys too.
printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
  "$mirror" "$suite" "$suite" "$secmirror" "$suite" > "$sources"
# Debian 13 ships Node 20 as a package; on Debian 12 (18) build.sh adds Node from the npm registry instead.
[ "$suite" = bookworm ] || pkgs="$pkgs,nodejs"
mkdir -p "$cache/debs"

# MODULES=list: a 7 MB initrd built in 6 s instead of 36 MB in 80 s (x2); the list covers qemu
# (virtio) and real mini-PC storage (nvme, ahci, eMMC, USB). NIC drivers load from the root fs.
# The files are owned by no package, so dpkg raises no conffile prompt.
mmdebstrap --variant=minbase --format=tar --include="$pkgs" \
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
  --hook-dir=/usr/share/mmdebstrap/hooks/eatmydata \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --essential-hook='mkdir -p "$1"/etc/initramfs-tools/conf.d "$1"/usr/share/initramfs-tools/modules.d
     echo MODULES=list > "$1"/etc/initramfs-tools/conf.d/90-firmware.conf
     echo COMPRESS=zstd >> "$1"/etc/initramfs-tools/conf.d/90-firmware.conf
     printf "%s\n" virtio_pci virtio_blk virtio_scsi ext4 vfat nls_cp437 nls_ascii nvme ahci sd_mod sdhci_pci sdhci_acpi mmc_block usb_storage uas xhci_pci \
        > "$1"/usr/share/initramfs-tools/modules.d/firmware' \
  --setup-hook="mkdir -p \"\$1\"/var/cache/apt/archives/" \
  --setup-hook="sync-in '$cache/debs' /var/cache/apt/archives/" \
  --customize-hook="sync-out /var/cache/apt/archives '$cache/debs'" \
  "$suite" "$out.tmp" "$sources"
mv "$out.tmp" "$out"
