// Power cuts on the firmware image (part of `npm run test:image`, not of the CI boot test: seven boots, ~40 min
// under TCG on a loaded 2-core host).
// One box (a primary alone: it must become MASTER) is flashed and booted; three times its power is cut by
// SIGKILL of the qemu process (never the guest's own shutdown), then it boots again and must come up healthy:
//   1. first boot: cut once first boot says it wrote the config (keys being made) -> the next boot finishes
//      first boot: the config written before the cut is kept, the TLS key and certificate are whole and match,
//      all three NIC roles are in place, duogate runs MASTER;
//   2. config apply: `duogate config apply` cut at fractions of its measured duration, and once right after it
//      reported success -> the config file is the old one or the new one (the new one when the cut came after
//      the success message: it was fsynced), it passes `duogate check`, every stored revision is whole, and
//      the daemon runs what the file says;
//   3. upgrade: `duogate-upgrade` cut while writing slot B -> the box boots slot A, healthy, with no entry for
//      the half-written slot; a second upgrade succeeds, and a cut right after it reported "ready" boots the
//      new slot on trial, which gets blessed.
// Emulation is 15-20x slower than hardware: nothing here judges timing; waits are generous but bounded.
import t from 'tap';
import type * as Tap from 'tap';
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Lab, sleep, stages, upgradeStick, waitFor, type Guest } from './lab.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const OUT = path.join(ROOT, 'board/minipc/out');
const IMAGE = process.env.DUOGATE_IMAGE ?? path.join(OUT, 'duogate-minipc.img');
const UPGRADE = path.join(OUT, 'duogate-minipc.root.zst');
const RUN_DIR = path.join(OUT, 'test-powercut');
const PREFIX = 'dgpc'; // boot.image.ts uses dgimg, upgrade.image.ts dgupg

const stage = stages(t);
const figures: Record<string, unknown> = { cuts: [] as unknown[] };
const secs = (t0: number) => Math.round((Date.now() - t0) / 100) / 10;
const CONFIG = '/etc/duogate/duogate.yaml';

async function sh(g: Guest, cmd: string, ms = 60_000): Promise<string> {
  const r = await g.run(cmd, ms);
  if (r.code !== 0) throw new Error(`${g.spec.name}: \`${cmd}\` exited ${r.code}: ${r.out}`);
  return r.out;
}
const sum = async (g: Guest, file: string) => (await sh(g, `sha256sum ${file}`)).split(/\s/)[0]!;
const slot = async (g: Guest) => /duogate\.slot=([ab])/.exec(await sh(g, 'cat /proc/cmdline'))?.[1];
const entries = async (g: Guest) => (await sh(g, 'mountpoint -q /boot/efi || mount /boot/efi; ls /boot/efi/loader/entries')).split(/\s+/).filter(Boolean).sort();
async function status(g: Guest): Promise<any> {
  const r = await g.run('duogate status --json --timeout 60', 90_000);
  if (r.code !== 0) throw new Error(`duogate status: ${r.out}`);
  return JSON.parse(r.out.slice(r.out.indexOf('{')));
}

if (process.getuid?.() !== 0) {
  t.plan(0, 'the image test needs root (namespaces, taps)');
} else if (!existsSync(IMAGE) || !existsSync(UPGRADE) || !existsSync(UPGRADE + '.sig')) {
  t.fail(`${IMAGE}, ${UPGRADE} or its .sig not found: build first with \`npm run build:image\``);
} else {
  rmSync(RUN_DIR, { recursive: true, force: true });
  const stick = upgradeStick(RUN_DIR, UPGRADE);

  const lab = new Lab(PREFIX, RUN_DIR);
  const g = lab.guest({
    name: 'P', extraDisk: stick,
    // sync_password: config sync runs the config store and `duogate config apply` (the peer never answers).
    seed: 'role: primary\nname: gw-pc\ncarp_password: powercut-test\nsync_password: powercut-sync-secret\nlan: { description: "pc-0" }\n',
    nics: [{ role: 'wan', mac: '52:54:00:d6:0d:01', slot: 3 }, { role: 'lan', mac: '52:54:00:d6:0d:02', slot: 4 }, { role: 'sync', mac: '52:54:00:d6:0d:03', slot: 5 }],
  });
  const t00 = Date.now();
  t.teardown(async () => {
    await lab.down();
    rmSync(stick, { force: true }); rmSync(path.join(RUN_DIR, 'stick'), { recursive: true, force: true });
    figures.total_s = secs(t00);
    figures.notes = lab.notes;
    writeFileSync(path.join(RUN_DIR, 'figures.json'), JSON.stringify(figures, null, 2) + '\n');
  });

  // Each power-on gets a fresh serial log (qemu truncates it); the previous one is kept for a post-mortem.
  let boots = 0;
  const powerOn = () => {
    if (existsSync(g.serialLog)) renameSync(g.serialLog, path.join(g.dir, `ttyS0.boot${boots}.log`));
    boots++;
    g.powerOn();
  };
  const cut = async (what: string, extra: Record<string, unknown> = {}) => {
    await g.powerOff();
    (figures.cuts as unknown[]).push({ what, at_s: secs(t00), ...extra });
  };

  /** What every boot after a cut must show: first boot done, config valid, daemon MASTER, no duogate unit failed,
   *  no empty file in force under /etc/duogate or /var/lib/duogate. */
  async function healthy(t: Tap.Test, label: string): Promise<any> {
    const t0 = Date.now();
    await g.waitShell(420_000);
    const done = await waitFor(`${label}: first boot done`, async () =>
      (await g.run('cat /var/lib/duogate/firstboot.done 2>/dev/null || systemctl is-failed duogate-firstboot', 30_000)).out.match(/^\d{4}-|^failed/m), 300_000, 2000);
    t.notMatch(done[0], /failed/, `${label}: first boot is done`);
    const chk = await g.run(`duogate check --config ${CONFIG}`, 120_000);
    t.equal(chk.code, 0, `${label}: the config in force passes duogate check\n${chk.out}`);
    const s = await waitFor(`${label}: duogate MASTER`, async () => { const x = await status(g); return x.carp_role === 'MASTER' ? x : null; }, 300_000, 3000);
    t.same(s.vips.map((v: any) => v.state), ['MASTER', 'MASTER'], `${label}: MASTER of both vhids`);
    const failed = (await g.run('systemctl --failed --no-legend --plain | cut -d" " -f1', 30_000)).out.split(/\s+/).filter(Boolean);
    t.same(failed.filter((u) => u.startsWith('duogate')), [], `${label}: no duogate unit failed (failed units: ${failed.join(' ') || 'none'})`);
    const empty = (await g.run('find /etc/duogate /var/lib/duogate -type f -size 0 ! -name ".*"', 30_000)).out.split(/\s+/).filter(Boolean);
    t.same(empty, [], `${label}: no empty file in force`);
    const revs = Number((await sh(g, 'ls /var/lib/duogate/configstore 2>/dev/null | grep -c "^rev-.*\\.json$"; true')).trim().split('\n').at(-1));
    const hist = JSON.parse((await sh(g, 'duogate config history --json', 120_000)).replace(/^[^[]*/, ''));
    t.equal(hist.length, revs, `${label}: every one of the ${revs} stored revisions is whole`);
    t.comment(`${label}: healthy ${secs(t0)} s after power-on`);
    return { status: s, history: hist };
  }

  await stage('1. power cut during first boot; the next boot completes it', async (t) => {
    g.flash(IMAGE);
    lab.up();
    const t0 = Date.now();
    powerOn();
    // First boot writes NIC roles, then the config (and says so), then makes the TLS key: cut right there.
    await waitFor('first boot wrote the config', async () => /duogate-firstboot: wrote \/etc\/duogate\/duogate\.yaml/.test(g.serial()), 600_000, 50);
    await cut('first boot, after "wrote duogate.yaml", while the TLS key is made', { after_poweron_s: secs(t0) });
    // Console output passes through journald, so the keys may be done by the time the line is seen; the next
    // boot's "present, kept" below proves the cut still came before first boot had finished.
    const keysDone = /TLS certificate SHA-256 fingerprint/.test(readFileSync(g.serialLog, 'utf8'));
    t.comment(`the cut came ${keysDone ? 'after' : 'before'} the keys were printed`);
    figures.firstboot_cut_after_keys = keysDone;
    powerOn();
    await healthy(t, 'after the first-boot cut');
    t.match(g.serial(), /duogate-firstboot: \/etc\/duogate\/duogate\.yaml present, kept/, 'the config first boot reported written survived the cut');
    t.match(g.serial(), /TLS certificate SHA-256 fingerprint: ([0-9A-F]{2}:){31}[0-9A-F]{2}/, 'first boot finished: keys and fingerprint');
    const pubs = await sh(g, 'cd /var/lib/duogate/configsync && openssl pkey -pubout -in sync.key | sha256sum && openssl x509 -noout -pubkey -in sync.crt | sha256sum');
    const [k, c] = pubs.split('\n').map((l) => l.split(/\s/)[0]);
    t.ok(k && k === c, `the TLS key and certificate are whole and belong together (${k?.slice(0, 12)} / ${c?.slice(0, 12)})`);
    for (const r of ['wan', 'lan', 'sync']) {
      const mac = g.spec.nics.find((n) => n.role === r)!.mac;
      t.match(await sh(g, `cat /etc/systemd/network/10-duogate-${r}0.link; cat /sys/class/net/${r}0/address`), new RegExp(`MACAddress=${mac}[\\s\\S]*${mac}`), `${r}0 persisted and in place`);
    }
    t.equal((await status(g)).vips[0].description, 'pc-0', 'the daemon runs the seeded config');
    figures.firstboot_cut_total_s = secs(t0);
  });

  await stage('2. power cuts during config apply: old or new config, whole, never empty', async (t) => {
    let n = 0;
    const prepare = async () => {
      n++;
      const file = `/root/pc-${n}.yaml`;
      await sh(g, `sed -E 's/description: "pc-[0-9]+"/description: "pc-${n}"/' ${CONFIG} > ${file} && grep -q '"pc-${n}"' ${file}`);
      return { file, oldSum: await sum(g, CONFIG), newSum: await sum(g, file), apply: `duogate config apply ${file} -m pc-${n}` };
    };
    // Calibration: one apply without a cut, timed from the command to its answer.
    const cal = await prepare();
    let t0 = Date.now();
    const r = await g.run(cal.apply, 300_000);
    const applyMs = Date.now() - t0;
    t.equal(r.code, 0, `apply without a cut: ${r.out}`);
    t.equal(await sum(g, CONFIG), cal.newSum, 'the daemon rewrote its config file');
    figures.apply_ms = applyMs;
    t.comment(`duogate config apply took ${applyMs} ms (emulated)`);

    const outcomes: Record<string, string> = {};
    // Cuts while the command runs (CLI start, request, file write, revision, live apply), then one right after
    // it reported success: by then the file and the revision were fsynced, so the new config must survive.
    for (const frac of [0.6, 0.9, 'after-success'] as const) {
      const p = await prepare();
      const label = `cut ${frac === 'after-success' ? 'right after the apply answered' : `at ${Math.round(frac * 100)}% of the apply's duration`} (pc-${n})`;
      if (frac === 'after-success') {
        const rr = await g.run(p.apply, 300_000);
        t.equal(rr.code, 0, `${label}: apply answered: ${rr.out}`);
        await cut(label);
      } else {
        const delay = Math.round(frac * applyMs);
        t0 = Date.now();
        const pending = g.run(p.apply, delay + 60_000).catch(() => null);
        await sleep(delay);
        await cut(label, { delay_ms: delay });
        void pending;
      }
      powerOn();
      const h = await healthy(t, `after ${label}`);
      const now = await sum(g, CONFIG);
      const which = now === p.newSum ? 'new' : now === p.oldSum ? 'old' : 'neither';
      outcomes[label] = which;
      t.ok(which !== 'neither', `${label}: the config file is the old one or the new one (${which})`);
      if (frac === 'after-success') t.equal(which, 'new', `${label}: the applied config survived the cut`);
      const desc = h.status.vips[0].description;
      t.equal(desc, which === 'new' ? `pc-${n}` : `pc-${n - 1}`, `${label}: the daemon runs what the file says (${desc})`);
      const last = h.history.at(-1);
      t.ok(last && (last.description === `pc-${n}` || last.origin === 'boot' || which === 'old'), `${label}: the last revision is the apply or a boot record of the file (${last?.origin} "${last?.description}")`);
      if (frac === 'after-success') t.equal(last?.description, `pc-${n}`, `${label}: the revision the apply reported is stored`);
      // The file is written before the revision: an old file with the new revision would mean a lost rename.
      if (which === 'old') t.not(last?.description, `pc-${n}`, `${label}: no revision of a config that is not in force`);
      // The next round starts from what is in force now.
      if (which === 'old') n--;
    }
    figures.apply_cuts = outcomes;
  });

  await stage('3. power cut during duogate-upgrade; old slot boots; a second upgrade succeeds', async (t) => {
    const cfgSum = await sum(g, CONFIG);
    t.equal(await slot(g), 'a', 'running slot A');
    t.same(await entries(g), ['duogate-a.conf'], 'one boot entry');
    await sh(g, 'mkdir -p /mnt/stick && mount -o ro /dev/vdb /mnt/stick && ls /mnt/stick/duogate-minipc.root.zst');
    // In the background, its output to a file on tmpfs; the cut comes 20 s into writing slot B.
    await sh(g, '(duogate-upgrade /mnt/stick/duogate-minipc.root.zst --force > /run/pc-upgrade.log 2>&1 &)');
    const t0 = Date.now();
    await waitFor('the upgrade writes slot B', async () => (await g.run('cat /run/pc-upgrade.log', 30_000)).out.includes('writing'), 300_000, 1000);
    await sleep(20_000);
    const log = (await g.run('cat /run/pc-upgrade.log', 30_000)).out;
    t.notMatch(log, /written and read back|FAILED/, `still writing slot B when the power goes: ${log.split('\n').at(-1)}`);
    await cut('upgrade, 20 s into writing slot B', { after_start_s: secs(t0) });
    powerOn();
    await healthy(t, 'after the upgrade cut');
    t.equal(await slot(g), 'a', 'booted the old slot A');
    t.same(await entries(g), ['duogate-a.conf'], 'the half-written slot B is not registered for boot');
    t.equal(await sum(g, CONFIG), cfgSum, 'the config is the one before the upgrade');

    await sh(g, 'mkdir -p /mnt/stick && mount -o ro /dev/vdb /mnt/stick');
    const t1 = Date.now();
    const up = await g.run('duogate-upgrade /mnt/stick/duogate-minipc.root.zst --force', 1_200_000);
    figures.upgrade_s = secs(t1);
    t.equal(up.code, 0, `the second upgrade ran:\n${up.out}`);
    t.match(up.out, /slot b ready/, 'it reported slot B ready');
    t.same(await entries(g), ['duogate-a.conf', 'duogate-b+3.conf'], 'slot B registered as a trial boot');
    // Cut the power right after "ready" instead of rebooting: the entry, kernel and slot were synced.
    await cut('right after duogate-upgrade reported ready');
    powerOn();
    await healthy(t, 'after the cut that followed the upgrade');
    t.equal(await slot(g), 'b', 'booted the new slot B');
    t.equal(await sum(g, CONFIG), cfgSum, 'the config came along');
    const blessed = await waitFor('entry blessed', async () => { const e = await entries(g); return e.includes('duogate-b.conf') ? e : null; }, 300_000, 3000);
    t.same(blessed, ['duogate-a.conf', 'duogate-b.conf'], 'slot B blessed once duogate answered');
  });
}
