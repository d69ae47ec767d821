// duogate-upgrade against a fake box (no qemu; runs in `npm test`): the script's test mode
// (DUOGATE_UPGRADE_TEST_ROOT, see its header) puts /proc/cmdline, the public key, the slots and the ESP in a
// temporary directory, and small ext4 images signed with a throw-away key stand in for the firmware.
// Proven here: the upgrade registers a verified slot; a file changed in place or replaced after the
// signature check is never registered (what is hashed is what is written); a downgrade is refused unless
// --allow-downgrade; a slot that does not read back as written is wiped and never registered. The real
// image path (qemu, systemd-boot) is test/image/upgrade.image.ts.
import t from 'tap';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SCRIPT = path.join(ROOT, 'board/minipc/overlay/usr/local/sbin/duogate-upgrade');
const SIGN = path.join(ROOT, 'board/minipc/sign-upgrade.sh');
const TOOLS = ['mkfs.ext4', 'debugfs', 'e2fsck', 'zstd', 'openssl', 'unshare', 'mount'];
const missing = TOOLS.filter((x) => spawnSync('sh', ['-c', `command -v ${x}`]).status !== 0);

const sh = (cmd: string, args: string[], env?: NodeJS.ProcessEnv): SpawnSyncReturns<string> => {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env, timeout: 120_000 });
  if (r.error) throw r.error;
  return r;
};
const must = (cmd: string, args: string[]) => {
  const r = sh(cmd, args);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}: ${r.stderr}`);
  return r.stdout;
};

if (process.getuid?.() !== 0) {
  t.plan(0, 'needs root (the script mounts the slot it wrote, through a loop device, in a private mount namespace)');
} else if (missing.length) {
  t.plan(0, `needs ${missing.join(', ')} (board/bootstrap.sh installs them)`);
} else {
  const dir = mkdtempSync(path.join(tmpdir(), 'dg-upgrade-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const key = path.join(dir, 'signing.key');
  must('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', key]);
  const SLOT_BYTES = 24 * 1024 * 1024;

  /** A root-slot image: an ext4 filesystem with a kernel, an initrd, the version file and a random payload
   * (random, so zstd stores it as is and a flipped byte there changes what is written), zstd-compressed
   * without zstd's own checksum (the script's hash must catch a changed byte, not zstd), then signed. */
  let n = 0;
  const image = (version: string, built: number, marker: string) => {
    const d = path.join(dir, `img${++n}`);
    for (const p of ['boot', 'etc', 'usr/share/duogate']) mkdirSync(path.join(d, p), { recursive: true });
    writeFileSync(path.join(d, 'boot/vmlinuz-6.1.0-test'), `kernel ${marker}\n`);
    writeFileSync(path.join(d, 'boot/initrd.img-6.1.0-test'), `initrd ${marker}\n`);
    writeFileSync(path.join(d, 'etc/duogate-release'), `duogate ${version} (test) built ${new Date(built * 1000).toISOString().replace(/\.\d+Z$/, 'Z')}\n`);
    writeFileSync(path.join(d, 'usr/share/duogate/version'), `version=${version}\nbuilt=${built}\n`);
    writeFileSync(path.join(d, 'marker'), `${marker}\n`);
    writeFileSync(path.join(d, 'payload'), randomBytes(2 * 1024 * 1024));
    const raw = path.join(dir, `img${n}.ext4`);
    must('mkfs.ext4', ['-q', '-F', '-b', '4096', '-L', 'duogate-root', '-d', d, raw, '16M']);
    const zst = path.join(dir, `img${n}.root.zst`);
    must('zstd', ['-q', '-f', '--no-check', raw, '-o', zst]);
    must('bash', [SIGN, zst, key, version, String(built)]);
    // Where the payload sits in the raw image, to corrupt exactly there.
    const block = Number(/(\d+)/.exec(must('debugfs', ['-R', 'bmap /payload 100', raw]))![1]);
    return { zst, raw, payloadAt: block * 4096 + 17 };
  };

  /** A fresh fake box running slot A, duogate 0.5.0 built at t=2,000,000,000. */
  const box = () => {
    const r = path.join(dir, `box${++n}`);
    for (const p of ['run', 'proc', 'usr/share/duogate', 'dev/disk/by-partlabel', 'boot/efi/loader/entries', 'boot/efi/a', 'etc/duogate', 'var/lib/duogate/configsync', 'etc/systemd/network']) mkdirSync(path.join(r, p), { recursive: true });
    writeFileSync(path.join(r, '.duogate-upgrade-test-root'), '');
    writeFileSync(path.join(r, 'proc/cmdline'), 'root=PARTLABEL=root_a rw quiet duogate.slot=a\n');
    must('sh', ['-c', `openssl pkey -in '${key}' -pubout -out '${r}/usr/share/duogate/upgrade-signing.pub'`]);
    writeFileSync(path.join(r, 'usr/share/duogate/version'), 'version=0.5.0\nbuilt=2000000000\n');
    writeFileSync(path.join(r, 'dev/disk/by-partlabel/root_a'), Buffer.alloc(SLOT_BYTES, 0xaa));
    writeFileSync(path.join(r, 'dev/disk/by-partlabel/root_b'), Buffer.alloc(SLOT_BYTES, 0xbb));
    writeFileSync(path.join(r, 'boot/efi/loader/entries/duogate-a.conf'), 'title duogate 0.5.0 (slot A)\nsort-key duogate\nversion 1\n');
    // An old entry for slot B: it must be gone before slot B is overwritten.
    writeFileSync(path.join(r, 'boot/efi/loader/entries/duogate-b.conf'), 'title duogate 0.4.0 (slot B)\nsort-key duogate\nversion 0\n');
    writeFileSync(path.join(r, 'etc/duogate/duogate.yaml'), 'node: { name: gw-a }\n');
    writeFileSync(path.join(r, 'var/lib/duogate/configsync/sync.key'), 'identity\n');
    writeFileSync(path.join(r, 'etc/systemd/network/10-duogate-lan0.link'), '[Match]\nMACAddress=00:11:22:33:44:55\n');
    return r;
  };
  const slotB = (r: string) => path.join(r, 'dev/disk/by-partlabel/root_b');
  const entries = (r: string) => readdirSync(path.join(r, 'boot/efi/loader/entries')).sort();
  const inSlot = (r: string, file: string) => sh('debugfs', ['-R', `cat ${file}`, slotB(r)]).stdout;
  const digest = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');

  /** Wrappers put first on PATH: each calls the real tool, then does its one mischief once. */
  const bin = path.join(dir, 'bin');
  mkdirSync(bin);
  // After the signature check (openssl pkeyutl -verify), the file at the path changes: in place (SWAP_INPLACE:
  // one byte flipped, same size and inode) or replaced by another file (SWAP_WITH, renamed over it).
  writeFileSync(path.join(bin, 'openssl'), `#!/bin/bash
real=$(PATH=\${PATH#*:} command -v openssl)
"$real" "$@"; rc=$?
if [ "$1" = pkeyutl ] && [ -n "\${SWAP_TARGET:-}" ] && [ ! -e "$SWAP_TARGET.done" ]; then
  touch "$SWAP_TARGET.done"
  if [ -n "\${SWAP_WITH:-}" ]; then cp "$SWAP_WITH" "$SWAP_TARGET.new" && mv "$SWAP_TARGET.new" "$SWAP_TARGET"
  else printf '\\xff' | dd of="$SWAP_TARGET" bs=1 seek="$SWAP_INPLACE" conv=notrunc status=none; fi
fi
exit $rc
`);
  // A write that lands wrong: after the dd that writes the slot, one byte of the slot changes.
  writeFileSync(path.join(bin, 'dd'), `#!/bin/bash
real=$(PATH=\${PATH#*:} command -v dd)
"$real" "$@"; rc=$?
if [ -n "\${CORRUPT_DEV:-}" ] && [[ " $* " == *" of=$CORRUPT_DEV "* ]] && [ ! -e "$CORRUPT_DEV.done" ]; then
  touch "$CORRUPT_DEV.done"
  printf '\\x5a' | "$real" of="$CORRUPT_DEV" bs=1 seek="$CORRUPT_AT" conv=notrunc status=none
fi
exit $rc
`);
  chmodSync(path.join(bin, 'openssl'), 0o755);
  chmodSync(path.join(bin, 'dd'), 0o755);

  const upgrade = (r: string, file: string, args: string[] = [], env: Record<string, string> = {}) => sh('unshare', ['-m', '--propagation', 'private', 'bash', SCRIPT, file, '--force', ...args], {
    ...process.env, PATH: `${bin}:${process.env.PATH}`, DUOGATE_UPGRADE_TEST_ROOT: r, ...env,
  });
  const newer = image('0.5.1', 2_000_000_100, 'genuine');

  t.test('a newer signed image: slot B written, read back, config carried over, registered for a trial boot', async (t) => {
    const r = box();
    const res = upgrade(r, newer.zst);
    t.equal(res.status, 0, `succeeds: ${res.stderr}`);
    t.match(res.stdout, /slot b written and read back/);
    t.same(entries(r), ['duogate-a.conf', 'duogate-b+3.conf'], 'the old slot-B entry replaced by a trial entry');
    t.match(readFileSync(path.join(r, 'boot/efi/loader/entries/duogate-b+3.conf'), 'utf8'), /version\s+2\n[\s\S]*root=PARTLABEL=root_b .*duogate\.slot=b/);
    t.equal(readFileSync(path.join(r, 'boot/efi/b/vmlinuz'), 'utf8'), 'kernel genuine\n', 'kernel copied to the ESP');
    t.equal(inSlot(r, '/marker'), 'genuine\n');
    t.equal(inSlot(r, '/etc/duogate/duogate.yaml'), 'node: { name: gw-a }\n', 'config carried over');
    t.equal(inSlot(r, '/var/lib/duogate/configsync/sync.key'), 'identity\n', 'identity carried over');
    t.match(inSlot(r, '/etc/systemd/network/10-duogate-lan0.link'), /MACAddress=00:11:22:33:44:55/, 'NIC roles carried over');
    t.same(readdirSync(path.join(r, 'run')), ['duogate-upgrade.lock'], 'the private directory is removed (the lock file stays)');
  });

  t.test('refused with nothing written: a signature that does not verify, a manifest from before versions', async (t) => {
    const r = box();
    const before = digest(slotB(r));
    const sig = readFileSync(newer.zst + '.sig', 'utf8');
    writeFileSync(path.join(dir, 'forged.sig'), sig.replace('version=0.5.1', 'version=9.9.9'));
    let res = upgrade(r, newer.zst, [], { DUOGATE_UPGRADE_SIG: path.join(dir, 'forged.sig') });
    t.not(res.status, 0); t.match(res.stderr, /does not verify/, 'a version edited into the manifest breaks its signature');
    writeFileSync(path.join(dir, 'v1.sig'), randomBytes(64));
    res = upgrade(r, newer.zst, [], { DUOGATE_UPGRADE_SIG: path.join(dir, 'v1.sig') });
    t.not(res.status, 0); t.match(res.stderr, /not a duogate-upgrade v2 manifest/);
    t.equal(digest(slotB(r)), before, 'slot B untouched');
    t.same(entries(r), ['duogate-a.conf', 'duogate-b.conf']);
  });

  t.test('the file changes after its signature was checked: never registered', async (t) => {
    t.test('changed in place (same size, same inode)', async (t) => {
      const r = box();
      const zst = path.join(dir, 'inplace.root.zst');
      must('cp', [newer.zst, zst]); must('cp', [newer.zst + '.sig', zst + '.sig']);
      const res = upgrade(r, zst, [], { SWAP_TARGET: zst, SWAP_INPLACE: String(Math.floor(readFileSync(zst).length / 2)) });
      t.ok(existsSync(zst + '.done'), 'the file was changed during the run');
      t.not(res.status, 0, 'refused');
      t.match(res.stderr, /not the signed one[\s\S]*slot b wiped, nothing registered/, res.stderr);
      t.same(entries(r), ['duogate-a.conf'], 'no entry for slot B (its old one was removed before the write)');
      t.equal(readFileSync(slotB(r)).subarray(0, 4 << 20).every((b) => b === 0), true, 'the slot\'s start is wiped');
    });
    t.test('replaced by another signed file of a different image', async (t) => {
      const r = box();
      const other = image('0.5.1', 2_000_000_100, 'other');
      const zst = path.join(dir, 'replaced.root.zst');
      must('cp', [newer.zst, zst]); must('cp', [newer.zst + '.sig', zst + '.sig']);
      const res = upgrade(r, zst, [], { SWAP_TARGET: zst, SWAP_WITH: other.zst });
      t.ok(existsSync(zst + '.done'), 'the file was replaced during the run');
      t.equal(res.status, 0, `the file opened before the check is the one written: ${res.stderr}`);
      t.equal(inSlot(r, '/marker'), 'genuine\n', 'slot B holds the signed image, not the one swapped in');
    });
  });

  t.test('downgrades are refused unless --allow-downgrade', async (t) => {
    const older = image('0.4.9', 2_000_000_500, 'older-version');
    const olderBuild = image('0.5.0', 1_999_999_000, 'older-build');
    const same = image('0.5.0', 2_000_000_000, 'same-build');
    for (const [what, img, re] of [['an older version', older, /duogate 0\.4\.9, older than the running 0\.5\.0/], ['an older build of the same version', olderBuild, /older than the running build/]] as const) {
      const r = box();
      const before = digest(slotB(r));
      const res = upgrade(r, img.zst);
      t.not(res.status, 0, `${what}: refused`);
      t.match(res.stderr, re, res.stderr);
      t.match(res.stderr, /--allow-downgrade/);
      t.equal(digest(slotB(r)), before, `${what}: nothing written`);
      t.same(entries(r), ['duogate-a.conf', 'duogate-b.conf'], `${what}: entries unchanged`);
      const ok = upgrade(r, img.zst, ['--allow-downgrade']);
      t.equal(ok.status, 0, `${what}: installed with --allow-downgrade: ${ok.stderr}`);
      t.ok(existsSync(path.join(r, 'boot/efi/loader/entries/duogate-b+3.conf')));
    }
    const r = box();
    t.equal(upgrade(r, same.zst).status, 0, 'the same build again is not a downgrade');
    // A box from before the version file: the release line orders it.
    const r2 = box();
    rmSync(path.join(r2, 'usr/share/duogate/version'));
    writeFileSync(path.join(r2, 'etc/duogate-release'), 'duogate 0.5.0 (abc1234) built 2033-05-18T03:33:20Z\n');
    const res = upgrade(r2, older.zst);
    t.not(res.status, 0); t.match(res.stderr, /older than the running 0\.5\.0/, 'read from /etc/duogate-release');
  });

  t.test('a slot that does not read back as written is wiped and never registered', async (t) => {
    const r = box();
    const res = upgrade(r, newer.zst, [], { CORRUPT_DEV: slotB(r), CORRUPT_AT: String(newer.payloadAt) });
    t.ok(existsSync(slotB(r) + '.done'), 'one byte of the slot changed after the write');
    t.not(res.status, 0, 'refused');
    t.match(res.stderr, /slot b read back differs from what was written[\s\S]*nothing registered/, res.stderr);
    t.same(entries(r), ['duogate-a.conf']);
    t.equal(readFileSync(slotB(r)).subarray(0, 4 << 20).every((b) => b === 0), true, 'the slot\'s start is wiped');
  });

  t.test('one upgrade at a time', async (t) => {
    const r = box();
    const holder = spawnSync('flock', [path.join(r, 'run/duogate-upgrade.lock'), 'bash', SCRIPT, newer.zst, '--force'], {
      encoding: 'utf8', env: { ...process.env, DUOGATE_UPGRADE_TEST_ROOT: r },
    });
    t.not(holder.status, 0, 'refused while another holds the lock');
    t.match(holder.stderr, /another duogate-upgrade is running/);
    t.same(entries(r), ['duogate-a.conf', 'duogate-b.conf'], 'nothing changed');
  });

  t.test('test mode needs its marker file', async (t) => {
    const r = box();
    rmSync(path.join(r, '.duogate-upgrade-test-root'));
    const res = upgrade(r, newer.zst);
    t.not(res.status, 0);
    t.match(res.stderr, /for the test suite only; unset it/);
  });
}
