#!/bin/bash
# sign-upgrade.sh FILE KEY VERSION BUILT — write FILE.sig, the signed manifest duogate-upgrade checks.
#
#   FILE     the upgrade file (duogate-minipc.root.zst)
#   KEY      the Ed25519 private key (PEM) whose public half the boxes carry
#   VERSION  duogate's version in the image (package.json), BUILT its build time in Unix seconds: together
#            they order images, so a box refuses an older one (duogate-upgrade --allow-downgrade overrides)
#
# FILE.sig is two lines: the manifest, then "signature " and the base64 Ed25519 signature of the manifest line
# (with its newline). The manifest names the file's SHA-256 and size, so the version cannot be moved onto
# another file. build.sh signs with it; test/image/upgrade.test.ts signs its fake images with it too.
set -euo pipefail
die() { echo "sign-upgrade: FAILED: $*" >&2; exit 1; }
[ $# -eq 4 ] || die "usage: sign-upgrade.sh FILE KEY VERSION BUILT"
file=$1 key=$2 version=$3 built=$4
[[ $version =~ ^[0-9A-Za-z.+-]{1,64}$ ]] || die "version '$version': letters, digits and . + - only"
[[ $built =~ ^[0-9]{1,12}$ ]] || die "built '$built': Unix seconds"
[ -f "$file" ] || die "$file not found"
tmp=$(mktemp -d) && trap 'rm -rf "$tmp"' EXIT
printf 'duogate-upgrade v2 sha256=%s size=%s version=%s built=%s\n' \
  "$(sha256sum "$file" | cut -c1-64)" "$(stat -c %s "$file")" "$version" "$built" > "$tmp/manifest"
openssl pkeyutl -sign -inkey "$key" -rawin -in "$tmp/manifest" -out "$tmp/sig" || die "openssl pkeyutl -sign with $key"
{ cat "$tmp/manifest"; printf 'signature %s\n' "$(base64 -w0 "$tmp/sig")"; } > "$file.sig.tmp"
mv "$file.sig.tmp" "$file.sig"
