// A/B upgrade of the firmware image, proven on one booted box (part of `npm run test:image`).
// The box is flashed and seeded, then upgraded from duogate-minipc.root.zst (on a second disk, as from a USB
// stick): a file whose signature does not verify is refused, the pair rule refuses it while the box is MASTER, --force writes slot B, the reboot comes up from
// slot B with the node's config and identity kept, and the trial entry gets blessed once duogate answers.
// Then the fallback: a newer entry whose boot counter ran out (what systemd-boot leaves after three failed
// trial boots) must not be booted; the box comes back on the last good slot.
import t from 'tap';
import type * as Tap from 'tap';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Lab, postMortem, stages, upgradeStick, waitFor, type Guest } from './lab.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const OUT = path.join(ROOT, 'board/minipc/out');
// DUOGATE_UPGRADE_FROM: an image of an earlier build to flash instead (e.g. the Debian 12 image, to prove the
// upgrade from Debian 12 to Debian 13: docs/image.md). It must be signed by the same key as the upgrade file.
const IMAGE = process.env.DUOGATE_UPGRADE_FROM ? path.resolve(process.env.DUOGATE_UPGRADE_FROM) : path.join(OUT, 'duogate-minipc.img');
const UPGRADE = path.join(OUT, 'duogate-minipc.root.zst');
const RUN_DIR = path.join(OUT, 'test-upgrade');

const stage = stages(t);

const slot = async (g: Guest) => /duogate\.slot=([ab])/.exec((await g.run('cat /proc/cmdline', 30_000)).out)?.[1];
const entries = async (g: Guest) => (await g.run('ls /boot/efi/loader/entries', 30_000)).out.split(/\s+/).filter(Boolean).sort();

if (process.getuid?.() !== 0) {
  t.plan(0, 'the image test needs root (namespaces, taps)');
} else if (!existsSync(IMAGE) || !existsSync(UPGRADE) || !existsSync(UPGRADE + '.sig')) {
  t.fail(`${IMAGE}, ${UPGRADE} or its .sig not found: build first with \`npm run build:image\``);
} else {
  rmSync(RUN_DIR, { recursive: true, force: true });
  const stick = upgradeStick(RUN_DIR, UPGRADE, (dir) => {
    // The build's manifest with a signature that is not the build key's: one byte of it flipped.
    const [manifest, sigLine] = readFileSync(UPGRADE + '.sig', 'utf8').split('\n');
    const bad = Buffer.from(sigLine.replace(/^signature /, ''), 'base64'); bad[10] ^= 0x40;
    writeFileSync(path.join(dir, 'bad.sig'), `${manifest}\nsignature ${bad.toString('base64')}\n`);
  });

  const lab = new Lab('dgupg', RUN_DIR);
  const g = lab.guest({
    name: 'U', extraDisk: stick,
    seed: 'role: primary\nname: gw-u\ncarp_password: upgrade-test\n',
    nics: [{ role: 'wan', mac: '52:54:00:d6:0c:01', slot: 3 }, { role: 'lan', mac: '52:54:00:d6:0c:02', slot: 4 }, { role: 'sync', mac: '52:54:00:d6:0c:03', slot: 5 }],
  });
  t.teardown(async () => { await lab.down(); rmSync(stick, { force: true }); rmSync(path.join(RUN_DIR, 'stick'), { recursive: true, force: true }); });
  let crtSum = '';
  let debianBefore = '?';

  await stage('flashed box boots slot A and runs duogate', async (t) => {
    g.flash(IMAGE);
    lab.up();
    g.powerOn();
    await g.waitShell(600_000);
    await g.waitDaemonSocket(900_000);
    await waitFor('duogate answers', async () => (await g.run('duogate status --timeout 120', 300_000)).out.includes('CARP: MASTER'), 900_000, 3000)
      .catch(async (e: Error) => { t.comment(`slot A post-mortem:\n${await postMortem(g)}`); throw e; });
    t.equal(await slot(g), 'a', 'running slot A');
    debianBefore = (await g.run('cat /etc/debian_version', 30_000)).out.match(/^\d+\.\d+/m)?.[0] ?? '?';
    t.same(await entries(g), ['duogate-a.conf'], 'one boot entry, no counter');
    await g.run('echo "# kept across the upgrade" >> /etc/duogate/duogate.yaml', 30_000);
    crtSum = (await g.run('sha256sum /var/lib/duogate/configsync/sync.crt', 30_000)).out.split(' ')[0]!;
    t.equal(crtSum.length, 64, 'the node has its TLS certificate');
  });

  await stage('duogate-upgrade: refuses on the MASTER, writes slot B with --force', async (t) => {
    const mnt = await g.run('mkdir -p /mnt/stick && mount -o ro /dev/vdb /mnt/stick && ls /mnt/stick', 60_000);
    t.match(mnt.out, /duogate-minipc\.root\.zst/, 'the upgrade file is on the stick');
    const forged = await g.run('DUOGATE_UPGRADE_SIG=/mnt/stick/bad.sig duogate-upgrade /mnt/stick/duogate-minipc.root.zst --force', 600_000);
    t.not(forged.code, 0, 'a file whose signature does not verify is refused, even with --force');
    t.match(forged.out, /does not verify[\s\S]*nothing was written/, `says why: ${forged.out}`);
    t.same(await entries(g), ['duogate-a.conf'], 'no slot was registered');
    const refused = await g.run('duogate-upgrade /mnt/stick/duogate-minipc.root.zst', 300_000);
    t.not(refused.code, 0, 'refused');
    t.match(refused.out, /this node is 'MASTER', not BACKUP: upgrade the BACKUP first/, `says why: ${refused.out}`);
    const t0 = Date.now();
    const up = await g.run('duogate-upgrade /mnt/stick/duogate-minipc.root.zst --force', 900_000);
    t.equal(up.code, 0, `upgrade ran:\n${up.out}`);
    t.comment(`upgrade wrote slot B in ${Math.round((Date.now() - t0) / 1000)} s (emulated)`);
    t.same(await entries(g), ['duogate-a.conf', 'duogate-b+3.conf'], 'slot B registered as a trial boot with 3 tries');
    t.match((await g.run('cat /boot/efi/loader/entries/duogate-b+3.conf', 30_000)).out, /version\s+2[\s\S]*root=PARTLABEL=root_b/);
  });

  await stage('reboot: slot B boots, config and identity kept, entry blessed when healthy', async (t) => {
    await g.run('umount /mnt/stick', 30_000);
    await g.reboot(600_000);
    t.equal(await slot(g), 'b', 'running slot B');
    t.match((await g.run('tail -1 /etc/duogate/duogate.yaml', 30_000)).out, /# kept across the upgrade/, 'the config came along');
    // The new slot runs the upgrade build's Debian (Debian 13 after an upgrade from a Debian 12 image).
    const want = String(JSON.parse(readFileSync(path.join(OUT, 'build-info.json'), 'utf8')).debian ?? '').split(' ')[1];
    const deb = (await g.run('cat /etc/debian_version', 30_000)).out.match(/^\d+\.\d+/m)?.[0];
    t.comment(`Debian ${debianBefore} -> ${deb}`);
    if (want) t.equal(deb, want, `slot B runs Debian ${want}, the upgrade's release`);
    t.equal((await g.run('sha256sum /var/lib/duogate/configsync/sync.crt', 30_000)).out.split(' ')[0], crtSum, 'the same TLS identity');
    // udev names the ports from the .link files during coldplug, which under a loaded emulator can end after the shell is up.
    await waitFor('udev named lan0', async () => (await g.run('test -e /sys/class/net/lan0 && echo named', 30_000)).out.includes('named'), 300_000, 3000).catch(() => null);
    t.match((await g.run('cat /etc/systemd/network/10-duogate-lan0.link; cat /sys/class/net/lan0/address', 30_000)).out, /MACAddress=52:54:00:d6:0c:02[\s\S]*52:54:00:d6:0c:02/, 'NIC roles kept');
    await g.waitDaemonSocket(1_500_000);
    await waitFor('duogate answers on slot B', async () => (await g.run('duogate status --timeout 120', 300_000)).out.includes('CARP: MASTER'), 900_000, 3000)
      .catch(async (e: Error) => { t.comment(`slot B post-mortem:\n${await postMortem(g)}`); throw e; });
    const blessed = await waitFor('entry blessed', async () => { const e = await entries(g); return e.includes('duogate-b.conf') ? e : null; }, 900_000, 3000);
    t.same(blessed, ['duogate-a.conf', 'duogate-b.conf'], 'systemd-bless-boot marked slot B good once duogate-healthy passed');
  });

  await stage('fallback: an entry whose tries ran out is skipped; the last good slot boots', async (t) => {
    // What systemd-boot leaves after three failed trial boots of a newer slot-A entry: +0-3.
    await g.run([
      'mount /boot/efi 2>/dev/null; cd /boot/efi/loader/entries',
      'sed -e "s/slot B/slot A (bad)/; s/^version .*/version 3/; s/root_b/root_a/; s/slot=b/slot=a/; s#/b/#/a/#g" duogate-b.conf > "duogate-a+0-3.conf"',
      'rm -f duogate-a.conf; sync',
    ].join(' && '), 60_000);
    t.same(await entries(g), ['duogate-a+0-3.conf', 'duogate-b.conf'], 'a newer, exhausted entry for slot A');
    await g.reboot(600_000);
    t.equal(await slot(g), 'b', 'systemd-boot skipped the exhausted entry and booted slot B');
  });
}
