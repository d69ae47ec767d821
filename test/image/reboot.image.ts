// A box keeps its NIC roles across a reboot (`npx tap --timeout 1800 test/image/reboot.image.ts`; ~10-15 min
// under emulation). One box is flashed, first boot names its ports from the seed's MACs and writes the .link
// files; then the box reboots from inside (`systemctl reboot`) and udev alone must give the ports the same
// names, and duogate must come up on them. The boot test never reboots a box, so it cannot see this.
// The ports enumerate in another order than their roles (lan first), so only the .link files give the names.
// Cheap checks only (`systemctl is-active`, addresses): every `duogate` command costs a Node start, 25-55 s
// emulated. On a failure the udev journal and `udevadm test-builtin net_setup_link` of each port are printed.
import t from 'tap';
import type * as Tap from 'tap';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Lab, stages, waitFor, type Guest } from './lab.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const IMAGE = process.env.DUOGATE_IMAGE ?? path.join(ROOT, 'board/minipc/out/duogate-minipc.img');
const RUN_DIR = path.join(ROOT, 'board/minipc/out/test-reboot');
const PREFIX = 'dgrb'; // boot.image.ts uses dgimg, upgrade.image.ts dgupg, powercut.image.ts dgpc

const NICS = [
  { role: 'lan', mac: '52:54:00:d6:0e:02', slot: 3 },
  { role: 'sync', mac: '52:54:00:d6:0e:03', slot: 4 },
  { role: 'wan', mac: '52:54:00:d6:0e:01', slot: 5 },
] as const;
const SEED = 'role: primary\nname: gw-r\ncarp_password: reboot-test\n' +
  NICS.map((c) => `${c.role}: { mac: "${c.mac}" }\n`).join('');

const stage = stages(t);
const secs = (t0: number) => Math.round((Date.now() - t0) / 1000);

/** Port name -> MAC, from `ip -br link` (physical ports only). */
async function ports(g: Guest): Promise<Record<string, string>> {
  const r = await g.run('ip -color=never -br link show', 30_000);
  const out: Record<string, string> = {};
  for (const m of r.out.matchAll(/^(\S+?)(?:@\S+)?\s+\S+\s+([0-9a-f:]{17})\b/gm)) if (m[2].startsWith('52:54:00')) out[m[1]!] = m[2]!;
  return out;
}

/** What udev did with the ports, for the log of a failed run. */
async function udevReport(g: Guest): Promise<string> {
  const r = await g.run([
    'uname -r; cat /proc/cmdline; ip -color=never -br link',
    'ls -l /etc/systemd/network/ /run/systemd/network/ 2>&1',
    'for d in /sys/class/net/*; do [ -e $d/device ] || continue; echo "== ${d##*/} name_assign_type=$(cat $d/name_assign_type 2>&1)"; udevadm test-builtin net_setup_link $d 2>&1 | tail -25; done',
    'journalctl -b -u systemd-udevd --no-pager 2>&1 | tail -40',
    'journalctl -b --no-pager 2>&1 | grep -iE "rename|net_setup_link|\\.link" | tail -30',
  ].join('; '), 180_000);
  return r.out;
}

async function checkRoles(t: Tap.Test, g: Guest, when: string): Promise<void> {
  // udev names the ports during coldplug, which under a loaded emulator can end after the shell is up.
  const p = await waitFor(`${when}: wan0, lan0 and sync0 named`, async () => {
    const x = await ports(g);
    return x.wan0 && x.lan0 && x.sync0 ? x : null;
  }, 300_000, 3000).catch(async (e) => { t.comment(`${e.message}\n${await udevReport(g)}`); return null; });
  for (const c of NICS) t.equal(p?.[`${c.role}0`], c.mac, `${when}: ${c.role}0 is the port with MAC ${c.mac}`);
  // duogate adds the node's addresses once it runs; the VIP follows as MASTER (the only box on the wire).
  const lan = await waitFor(`${when}: duogate holds its LAN addresses`, async () => {
    const r = await g.run('systemctl is-active duogate; ip -color=never -4 -o addr show dev lan0', 30_000);
    return r.out.includes('192.168.1.2/') && r.out.includes('192.168.1.1/') ? r.out : null;
  }, 900_000, 5000).catch(async (e) => { t.comment(`${e.message}\n${(await g.run('systemctl status duogate --no-pager | tail -20', 60_000)).out}`); return ''; });
  t.match(lan, /^active/m, `${when}: duogate.service is active`);
  t.match(lan, /192\.168\.1\.2\/24[\s\S]*192\.168\.1\.1\/24|192\.168\.1\.1\/24[\s\S]*192\.168\.1\.2\/24/, `${when}: lan0 has the node address and the VIP`);
}

if (process.getuid?.() !== 0) {
  t.plan(0, 'the image test needs root (namespaces, taps)');
} else if (!existsSync(IMAGE)) {
  t.fail(`${IMAGE} not found: build it first with \`npm run build:image\``);
} else {
  mkdirSync(RUN_DIR, { recursive: true });
  const lab = new Lab(PREFIX, RUN_DIR);
  const g = lab.guest({ name: 'R', seed: SEED, nics: [...NICS] });
  t.teardown(() => lab.down());
  const info = JSON.parse(readFileSync(path.join(path.dirname(IMAGE), 'build-info.json'), 'utf8'));
  t.comment(`image: ${info.debian}, kernel ${info.kernel}, git ${info.git}`);

  await stage('first boot names the ports from the seed and duogate runs', async (t) => {
    const t0 = Date.now();
    g.flash(IMAGE);
    lab.up();
    g.powerOn();
    await g.waitShell(600_000);
    t.comment(`shell after ${secs(t0)} s`);
    const done = await waitFor('first boot done', async () =>
      (await g.run('cat /var/lib/duogate/firstboot.done 2>/dev/null || systemctl is-failed duogate-firstboot', 30_000)).out.match(/^\d{4}-|^failed/m), 600_000, 2000);
    t.notMatch(done[0], /failed/, 'first boot finished');
    t.comment(`first boot done after ${secs(t0)} s`);
    await checkRoles(t, g, 'first boot');
    t.comment(`duogate up after ${secs(t0)} s`);
    t.match((await g.run('cat /etc/systemd/network/10-duogate-lan0.link', 30_000)).out, /MACAddress=52:54:00:d6:0e:02/, 'lan0 persisted as a .link file');
  });

  await stage('after systemctl reboot: the same names, duogate up again', async (t) => {
    const t0 = Date.now();
    t.comment(`shell of the new boot after ${await g.reboot(600_000)} s`);
    await checkRoles(t, g, 'after reboot');
    t.comment(`duogate up after ${secs(t0)} s`);
  });
}
