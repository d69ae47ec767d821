#!/usr/bin/env bash
# `npm run test:fresh`: the README's quick start on a fresh Debian 13, as root on this machine.
#
# Makes a throwaway Debian root with mmdebstrap (minbase plus git, nodejs and npm only, no Recommends),
# copies a clean `git clone` of this checkout's HEAD into /root/duogate, mounts what the virtual board needs
# (proc, sys, dev, a tmpfs /run for `ip netns`) in a private mount namespace, and runs there as root
#   npm run demo -- --json
# which installs the Debian packages, runs npm ci and the build, then tells the failover story. The chroot
# shares the host's kernel and network (Debian mirror, npm registry); the board lives in namespaces of its
# own. Prints PASS or FAIL and the demo's JSON line, and always tears down: the board's namespaces and
# processes (by PID), the mounts (they die with the mount namespace) and the root.
#
# Environment:
#   FRESH_SUITE   Debian suite (default trixie)
#   FRESH_MIRROR  Debian mirror (default http://deb.debian.org/debian; security: FRESH_SECURITY_MIRROR)
#   FRESH_PREFIX  VirtualBoard prefix inside the root (default the demo's own, dg; others add --prefix=)
#   FRESH_PLAIN=1 run the README's command as printed, without --json (PASS is then its exit status)
#   FRESH_UNIT    1 (default): also run the config tests against the root's kea, nft and unbound (0: skip):
#                 npx tap test/unit/board-configs.test.ts test/unit/config-fuzz.test.ts test/unit/kea-run.test.ts
#   FRESH_CACHE   .deb cache shared by mmdebstrap and the root's apt (default board/fresh/cache;
#                 FRESH_CACHE= for a cold run that downloads everything)
#   FRESH_TIMEOUT seconds for the commands inside the root (default 2400)
#   FRESH_KEEP=1  keep the root (not the mounts or the board) in FRESH_DIR for a look afterwards
# Logs (mmdebstrap, demo, unit tests, teardown) stay in board/fresh/out/.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
log() { echo "fresh: $*"; }
# The README's command, plus --json unless FRESH_PLAIN=1, plus --prefix unless it is the demo's own (dg): the
# root's /run is its own, so its namespaces cannot meet the host's of the same name.
demo_args() {
  local a=""
  [ "${FRESH_PLAIN:-0}" = 1 ] || a="--json"
  [ "$1" = dg ] || a="$a --prefix=$1"
  echo "${a# }"
}
demo_cmd() { local a; a=$(demo_args "$1"); echo "npm run demo${a:+ -- $a}"; }
die() { echo "fresh: FAILED: $*" >&2; exit 1; }

# ---- inner part: runs in its own mount namespace (unshare -m), so every mount goes with it -------------
if [ "${1:-}" = --inner ]; then
  root=$2 prefix=$3 cache=$4 out=$5
  # The root a mount point of its own: `ip -n`/`ip netns exec` make / a slave mount, which fails on a plain dir.
  mount --bind "$root" "$root" || die "mount --bind $root"
  mount -t proc proc "$root/proc" || die "mount proc"
  mount -t sysfs sysfs "$root/sys" || die "mount sysfs"
  mount --rbind /dev "$root/dev" || die "mount --rbind /dev"
  mount -t tmpfs -o mode=755 tmpfs "$root/run" || die "mount tmpfs /run"
  mkdir -p "$root/run/netns" "$root/run/lock"
  if [ -n "$cache" ]; then mount --bind "$cache" "$root/var/cache/apt/archives" || die "bind $cache"; fi
  in_root() { chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"; }

  args=$(demo_args "$prefix")
  rc=0 s=$(date +%s)
  timeout -k 20 "${FRESH_TIMEOUT:-2400}" chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    bash -c "cd /root/duogate && exec npm run demo${args:+ -- $args}" > "$out/demo.log" 2>&1 || rc=$?
  echo "$rc" > "$out/demo.rc"
  echo $(( $(date +%s) - s )) > "$out/demo.seconds"
  if [ "${FRESH_UNIT:-1}" = 1 ] && [ -d "$root/root/duogate/dist" ]; then
    urc=0 s=$(date +%s)
    timeout -k 20 "${FRESH_TIMEOUT:-2400}" chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
      PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      bash -c 'cd /root/duogate && exec npx tap -R tap test/unit/board-configs.test.ts test/unit/config-fuzz.test.ts test/unit/kea-run.test.ts' \
      > "$out/unit.log" 2>&1 || urc=$?
    echo "$urc" > "$out/unit.rc"
    echo $(( $(date +%s) - s )) > "$out/unit.seconds"
  fi

  # Teardown of the board: the demo's own --down, then any namespace of the prefix that is left, its
  # processes killed by PID. Every loop is bounded by what `ip netns` lists.
  if [ -f "$root/root/duogate/dist/board/virtual/demo/demo.js" ]; then
    in_root bash -c "cd /root/duogate && timeout -k 5 60 node dist/board/virtual/demo/demo.js --down --prefix=$prefix" \
      >> "$out/teardown.log" 2>&1 || true
  fi
  for ns in $(in_root ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$prefix-" || true); do
    for pid in $(in_root ip netns pids "$ns" 2>/dev/null || true); do kill -9 "$pid" 2>/dev/null || true; done
    in_root ip netns del "$ns" >> "$out/teardown.log" 2>&1 || true
  done
  exit 0
fi

# ---- outer part ----------------------------------------------------------------------------------------
[ "$(id -u)" -eq 0 ] || die "must run as root (mmdebstrap, chroot, mounts, network namespaces); try: sudo $0"
suite=${FRESH_SUITE:-trixie}
mirror=${FRESH_MIRROR:-http://deb.debian.org/debian}
secmirror=${FRESH_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
prefix=${FRESH_PREFIX:-dg}
[[ $prefix =~ ^[A-Za-z0-9][A-Za-z0-9_-]{0,20}$ ]] || die "FRESH_PREFIX '$prefix': letters, digits, - and _ only, at most 21"
cache=${FRESH_CACHE-$here/cache}
work=${FRESH_DIR:-/var/tmp/duogate-fresh.$$}
root=$work/root
t0=$(date +%s)
declare -A T=()
stamp() { T[$1]=$(( $(date +%s) - $2 )); log "$1: ${T[$1]} s"; }

# Processes whose root directory is the throwaway root, killed by PID (daemons the board started that
# outlived it; nothing else can have that root).
kill_root_procs() {
  local p r n=0
  for p in /proc/[0-9]*; do
    r=$(readlink "$p/root" 2>/dev/null) || continue
    [ "$r" = "$root" ] || continue
    kill -9 "${p#/proc/}" 2>/dev/null && n=$((n + 1))
  done
  [ "$n" -eq 0 ] || log "killed $n leftover process(es) in the root"
}
teardown() {
  local rc=$?
  [ -d "$root" ] || exit "$rc"
  kill_root_procs
  if grep -q " $root" /proc/self/mountinfo; then
    # Only possible if the inner mount namespace leaked into ours; never delete through a mount.
    echo "fresh: FAILED: mounts under $root are still there: leaving it (umount -R $root, then rm -rf $work)" >&2
    exit 1
  fi
  if [ "${FRESH_KEEP:-0}" = 1 ]; then log "kept $work"; else rm -rf --one-file-system "$work"; fi
  exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT TERM

command -v git >/dev/null || die "git not found"
if ! command -v mmdebstrap >/dev/null; then
  log "installing mmdebstrap"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends mmdebstrap >/dev/null \
    || die "apt-get install mmdebstrap"
fi
[ -e "$work" ] && die "$work exists: remove it or set FRESH_DIR"
out=$here/out
rm -rf "$out" && mkdir -p "$work" "$out"
[ -n "$cache" ] && mkdir -p "$cache"
head=$(git -C "$repo" rev-parse HEAD) || die "git rev-parse HEAD in $repo"
[ -z "$(git -C "$repo" status --porcelain --untracked-files=no)" ] \
  || log "note: $repo has uncommitted changes; the root gets HEAD ($head) only"

# ---- 1. the root ----------------------------------------------------------------------------------------
s=$(date +%s)
cat > "$work/sources" <<EOF
Types: deb
URIs: $mirror
Suites: $suite $suite-updates
Components: main

Types: deb
URIs: $secmirror
Suites: $suite-security
Components: main
EOF
cache_hooks=()
if [ -n "$cache" ]; then
  cache_hooks=(--setup-hook='mkdir -p "$1"/var/cache/apt/archives/'
    --setup-hook="sync-in '$cache' /var/cache/apt/archives/"
    --customize-hook="sync-out /var/cache/apt/archives '$cache'")
fi
log "mmdebstrap $suite: minbase + git nodejs npm"
mmdebstrap --variant=minbase --include=git,nodejs,npm \
  --hook-dir=/usr/share/mmdebstrap/hooks/eatmydata "${cache_hooks[@]}" \
  "$suite" "$root" "$work/sources" > "$out/mmdebstrap.log" 2>&1 \
  || { tail -20 "$out/mmdebstrap.log" >&2; die "mmdebstrap $suite (log above)"; }
# The root shares the host's network: a daemon a package's postinst starts would listen on the host's
# ports. A fresh machine runs them under systemd and bootstrap.sh disables them; here none may start.
printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
cp -L /etc/resolv.conf "$root/etc/resolv.conf"
# A network whose TLS goes through an inspecting proxy makes its machines trust the proxy's CA as a local
# certificate; a fresh machine there would have it too, so the root gets this machine's local CAs.
if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
  mkdir -p "$root/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
  chroot "$root" update-ca-certificates >> "$out/mmdebstrap.log" 2>&1 || die "update-ca-certificates in the root"
  log "root: trusts this machine's local CAs ($(ls /usr/local/share/ca-certificates/*.crt | wc -l) from /usr/local/share/ca-certificates)"
fi
stamp root "$s"
log "root: Debian $(cat "$root/etc/debian_version"), node $(chroot "$root" node -v), npm $(chroot "$root" npm -v)"

# ---- 2. the clone -----------------------------------------------------------------------------------------
s=$(date +%s)
git clone -q --no-hardlinks "$repo" "$root/root/duogate" || die "git clone $repo"
git -C "$root/root/duogate" checkout -q --detach "$head" || die "git checkout $head"
stamp clone "$s"

# ---- 3. the README's command inside, as root ---------------------------------------------------------------
s=$(date +%s)
log "running '$(demo_cmd "$prefix")' in the root as root (log: $out/demo.log)"
unshare --mount --propagation private -- bash "$here/fresh.sh" --inner "$root" "$prefix" "$cache" "$out" \
  || die "the inner run (mounts) failed"
stamp inside "$s"

rc=$(cat "$out/demo.rc" 2>/dev/null || echo missing)
json=$(grep -E '^\{' "$out/demo.log" | tail -1 || true)
ok=1
[ "$rc" = 0 ] || ok=0
if [ "${FRESH_PLAIN:-0}" != 1 ]; then [ -n "$json" ] || ok=0; fi
urc=
if [ "${FRESH_UNIT:-1}" = 1 ]; then
  urc=$(cat "$out/unit.rc" 2>/dev/null || echo missing)
  [ "$urc" = 0 ] || ok=0
fi
total=$(( $(date +%s) - t0 ))
if [ "$ok" = 0 ]; then
  echo "---- demo.log (last 40 lines) ----"; tail -40 "$out/demo.log" 2>/dev/null || true
  [ -n "$urc" ] && { echo "---- unit.log (last 40 lines) ----"; tail -40 "$out/unit.log" 2>/dev/null || true; }
fi
[ -n "$urc" ] && grep -E '^# \{ total:' "$out/unit.log" | tail -1 | sed 's/^/fresh: unit tests /' || true
[ -n "$json" ] && echo "$json"
verdict=$([ "$ok" = 1 ] && echo PASS || echo FAIL)
ds=$(cat "$out/demo.seconds" 2>/dev/null || echo '?')
us=$(cat "$out/unit.seconds" 2>/dev/null || echo '?')
echo "fresh: $verdict ($suite, demo exit $rc${urc:+, unit tests exit $urc}; root ${T[root]} s, clone ${T[clone]} s, bootstrap + demo $ds s${urc:+, unit tests $us s}, total $total s)"
[ "$ok" = 1 ]
