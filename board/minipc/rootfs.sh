#!/usr/bin/env bash
# Stage 1 of the image build: a Debian 12 root filesystem tarball from the configured mirror.
# usage: rootfs.sh OUT.tar CACHE_DIR      (run by build.sh, which caches OUT.tar by a hash of
# this file and packages.txt; ~2 min cold). Recipe and measurements: docs/board-image.md (shared).
set -euo pipefail
out=$1 cache=$2
here=$(cd "$(dirname "$0")" && pwd)
pkgs=$(grep -v '^\s*#' "$here/packages.txt" | tr -s ' \n' ',' | sed 's/^,//; s/,$//')
sources=/etc/apt/sources.list.d/debian.sources
[ -f "$sources" ] || { echo "rootfs: $sources not found: the build takes the host's Debian 12 deb822 mirror list" >&2; exit 1; }
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
  bookworm "$out.tmp" "$sources"
mv "$out.tmp" "$out"
