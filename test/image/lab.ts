// The image lab: two mini-PCs as qemu guests (TCG, UEFI via OVMF, the flashed image itself) with three
// virtio NICs each, wired inside network namespaces this lab creates (recipe: docs/board-image.md, shared):
//
//   ${prefix}-client  eth0 192.168.1.100/24 (gw 192.168.1.1) --+
//   ${prefix}-lab     brlan  <- tap A-lan, tap B-lan, client --+   brwan <- A-wan, B-wan, server
//                     brsync <- A-sync, B-sync                      (the sync "cable")
//   ${prefix}-server  eth0 203.0.113.10/24 ---------------------------------------------+
//
// Each guest boots its own sparse copy of the image with its seed written onto the ESP (as a user would with
// a laptop), so the test runs the real flash path: OVMF -> systemd-boot -> kernel -> first boot. Commands run
// over the guest's virtio console (hvc0, a root shell that exists only under a hypervisor); the serial console
// (ttyS0, what a user sees) is logged to a file. Nothing touches the host's network namespace.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type * as Tap from 'tap';

import { sleep, waitFor } from '../../board/virtual/wait.js';

export { sleep, waitFor };

/**
 * The "USB stick": an ext4 image (`runDir`/stick.img, /dev/vdb in a guest given it as extraDisk) holding the
 * upgrade file and its signature, plus whatever `extra` writes into the stick's folder. Returns the image's path.
 */
export function upgradeStick(runDir: string, upgrade: string, extra?: (dir: string) => void): string {
  const dir = path.join(runDir, 'stick');
  mkdirSync(dir, { recursive: true });
  copyFileSync(upgrade, path.join(dir, path.basename(upgrade)));
  copyFileSync(upgrade + '.sig', path.join(dir, path.basename(upgrade) + '.sig'));
  extra?.(dir);
  const stick = path.join(runDir, 'stick.img');
  const mk = spawnSync('mkfs.ext4', ['-q', '-F', '-d', dir, stick, '400M'], { encoding: 'utf8' });
  if (mk.status !== 0) throw new Error(`mkfs.ext4 for the upgrade stick: ${mk.stderr}`);
  return stick;
}

/**
 * Stages of one boot story: later stages need the earlier ones (a box that did not boot cannot fail over), so
 * they skip after a failure. `t` is the file's root tap object.
 */
export function stages(t: Tap.Test): (name: string, fn: (t: Tap.Test) => Promise<void>) => Promise<void> {
  let ok = true;
  return (name, fn) => t.test(name, async (st) => {
    if (!ok) { st.plan(0, 'an earlier stage failed'); return; }
    try { await fn(st); } catch (e) { ok = false; throw e; }
    if (!st.passing()) ok = false;
  }) as unknown as Promise<void>;
}

function sh(cmd: string, args: string[], what: string): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`${what}: ${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr.trim()}`);
  return r.stdout;
}

export interface NicSpec { role: 'wan' | 'lan' | 'sync'; mac: string; slot: number }
export interface GuestSpec { name: string; seed: string; nics: NicSpec[]; /** a second raw disk (virtio, /dev/vdb in the guest) */ extraDisk?: string }

const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';
const ESP_OFFSET = 1024 * 1024; // the ESP starts at 1 MiB (board/minipc/build.sh)

export class Guest {
  proc: ChildProcess | null = null;
  readonly dir: string;
  private sock: net.Socket | null = null;
  private buf = '';
  private seq = 0;

  constructor(readonly lab: Lab, readonly spec: GuestSpec) { this.dir = path.join(lab.runDir, spec.name); }

  get serialLog(): string { return path.join(this.dir, 'ttyS0.log'); }
  get consoleLog(): string { return path.join(this.dir, 'hvc0.log'); }
  serial(): string { try { return readFileSync(this.serialLog, 'utf8'); } catch { return ''; } }

  /** Flash: a sparse copy of the image, the seed on its ESP (mtools at the partition's offset, no mount). */
  flash(image: string): void {
    rmSync(this.dir, { recursive: true, force: true });
    mkdirSync(this.dir, { recursive: true });
    sh('cp', ['--sparse=always', image, path.join(this.dir, 'disk.img')], `${this.spec.name}: copy image`);
    writeFileSync(path.join(this.dir, 'seed.yaml'), this.spec.seed);
    sh('mcopy', ['-o', '-i', `${path.join(this.dir, 'disk.img')}@@${ESP_OFFSET}`, path.join(this.dir, 'seed.yaml'), '::/duogate-seed.yaml'], `${this.spec.name}: seed onto the ESP`);
    copyFileSync(OVMF_VARS, path.join(this.dir, 'efivars.fd'));
  }

  powerOn(): void {
    const d = this.dir, n = this.spec.name;
    const args = [
      'netns', 'exec', this.lab.ns('lab'), 'qemu-system-x86_64', '-name', `duogate-${n}`,
      '-nodefaults', '-display', 'none', '-accel', 'tcg,tb-size=64', '-smp', '1', '-m', String(GUEST_MIB), '-machine', 'q35',
      '-drive', `if=pflash,format=raw,readonly=on,file=${OVMF_CODE}`, '-drive', `if=pflash,format=raw,file=${d}/efivars.fd`,
      // cache=writeback, spelled out because the power-cut test (powercut.image.ts) rests on it: the guest sees a
      // volatile write cache and its flushes (fsync, journal commits) reach the image file's host page cache;
      // qemu holds no data of its own for a raw file, so SIGKILL of qemu loses what a power cut loses from the
      // guest's side: its page cache and writes not yet submitted. (A real disk can also lose writes it acked but
      // was not told to flush; no cache mode reproduces that on a qemu kill.) Not cache=unsafe: it drops flushes.
      '-drive', `file=${d}/disk.img,format=raw,if=none,id=d0,cache=writeback`, '-device', 'virtio-blk-pci,drive=d0,addr=0x6',
      ...(this.spec.extraDisk ? ['-drive', `file=${this.spec.extraDisk},format=raw,if=none,id=d1,readonly=on`, '-device', 'virtio-blk-pci,drive=d1,addr=0x8'] : []),
      ...this.spec.nics.flatMap((c) => [
        '-netdev', `tap,id=${c.role},ifname=${this.tap(c.role)},script=no,downscript=no`,
        '-device', `virtio-net-pci,netdev=${c.role},mac=${c.mac},addr=0x${c.slot.toString(16)}`,
      ]),
      '-chardev', `socket,id=ser0,path=${d}/ttyS0.sock,server=on,wait=off,logfile=${this.serialLog}`, '-serial', 'chardev:ser0',
      '-device', 'virtio-serial-pci,addr=0x7',
      '-chardev', `socket,id=hvc0,path=${d}/hvc0.sock,server=on,wait=off,logfile=${this.consoleLog}`, '-device', 'virtconsole,chardev=hvc0',
    ];
    // `ip netns exec` execs qemu, so this PID is qemu's.
    this.proc = spawn('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    this.proc.stderr!.on('data', (b) => { err += b; });
    this.proc.on('exit', (code, sig) => { if (code) this.lab.note(`${n}: qemu exited ${code ?? sig}: ${err.trim()}`); });
    this.lab.pids.add(this.proc.pid!);
  }

  /** Power cut: SIGKILL qemu by PID and wait (bounded) for it to go. */
  async powerOff(): Promise<void> {
    this.sock?.destroy(); this.sock = null;
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    p.kill('SIGKILL');
    for (let i = 0; i < 100 && p.exitCode === null && p.signalCode === null; i++) await sleep(50);
    this.lab.pids.delete(p.pid!);
  }

  tap(role: string): string { return `t${this.spec.name}-${role}`; }

  private async connect(deadline: number): Promise<void> {
    const file = path.join(this.dir, 'hvc0.sock');
    for (let i = 0; i < 1000 && Date.now() < deadline; i++) {
      if (existsSync(file)) {
        const ok = await new Promise<boolean>((res) => {
          const s = net.createConnection(file);
          s.once('connect', () => { this.sock = s; res(true); });
          s.once('error', () => res(false));
        });
        if (ok) {
          this.sock!.setEncoding('utf8');
          this.sock!.on('data', (d: string) => { this.buf += d; if (this.buf.length > 1 << 20) this.buf = this.buf.slice(-(1 << 19)); });
          this.sock!.on('error', () => { /* the guest went away: later commands time out */ });
          return;
        }
      }
      await sleep(200);
    }
    throw new Error(`${this.spec.name}: console socket ${file} not available`);
  }

  /** Wait (bounded) until the hvc0 root shell answers; turns its echo off. Returns seconds waited. */
  async waitShell(timeoutMs: number): Promise<number> {
    const t0 = Date.now(), deadline = t0 + timeoutMs;
    if (!this.sock) await this.connect(deadline);
    for (let i = 0; i < 1000 && Date.now() < deadline; i++) {
      this.buf = '';
      this.sock!.write('\nstty -echo; echo "__RE""ADY__"\n');
      for (let j = 0; j < 25 && Date.now() < deadline; j++) {
        if (this.buf.includes('__READY__')) { await sleep(300); return (Date.now() - t0) / 1000; }
        await sleep(200);
      }
    }
    throw new Error(`${this.spec.name}: no shell on hvc0 within ${timeoutMs / 1000} s; serial log tail:\n${this.serial().slice(-2000)}`);
  }

  /**
   * Reboot from inside (`systemctl reboot`) and wait (bounded) for the shell of the next boot. The boot id must
   * change: the old boot's shell keeps answering while it shuts down, which under emulation takes a while.
   * Returns seconds waited.
   */
  /**
   * Wait, in the guest's shell, for the daemon's control socket: a `duogate status` before it exists is a Node
   * start (25-90 s of emulated CPU on Debian 13) that only slows the daemon's own start. Bounded by `timeoutMs`.
   */
  async waitDaemonSocket(timeoutMs: number): Promise<boolean> {
    const n = Math.ceil(timeoutMs / 2000);
    const r = await this.run(`for i in $(seq ${n}); do test -S /run/duogate/duogate.sock && { echo socket-ready; break; }; sleep 2; done`, timeoutMs + 60_000);
    return r.out.includes('socket-ready');
  }

  async reboot(timeoutMs: number): Promise<number> {
    const t0 = Date.now(), deadline = t0 + timeoutMs;
    const bootId = async () => (await this.run('cat /proc/sys/kernel/random/boot_id', 30_000)).out.trim();
    const before = await bootId();
    await this.run('(sleep 1; systemctl reboot) >/dev/null 2>&1 &', 30_000);
    for (let i = 0; i < 1000 && Date.now() < deadline; i++) {
      await sleep(5000);
      await this.waitShell(Math.max(1000, deadline - Date.now()));
      const now = await bootId().catch(() => '');
      if (/^[0-9a-f-]{36}$/.test(now) && now !== before) return (Date.now() - t0) / 1000;
    }
    throw new Error(`${this.spec.name}: no shell of a new boot within ${timeoutMs / 1000} s after systemctl reboot; serial log tail:\n${this.serial().slice(-2000)}`);
  }

  /** Run a shell command in the guest; bounded. Output is what it printed (stdout+stderr). */
  async run(cmd: string, timeoutMs = 60_000): Promise<{ code: number; out: string }> {
    if (!this.sock) throw new Error(`${this.spec.name}: no console connection (call waitShell first)`);
    const n = ++this.seq;
    const begin = `__B${n}__`, endRe = new RegExp(`__E${n}:(\\d+)__`);
    this.buf = '';
    // The markers are split in the command text so a stray echo can never match them.
    this.sock.write(`echo "__B${n}""__"; ( ${cmd} ) 2>&1; echo "__E${n}:$?""__"\n`);
    const deadline = Date.now() + timeoutMs;
    for (let i = 0; Date.now() < deadline && i < 100_000; i++) {
      const m = endRe.exec(this.buf);
      if (m) {
        const start = this.buf.indexOf(begin);
        const out = this.buf.slice(start >= 0 ? start + begin.length : 0, m.index).replace(/\r/g, '').trim();
        return { code: Number(m[1]), out };
      }
      await sleep(100);
    }
    throw new Error(`${this.spec.name}: "${cmd}" did not finish within ${timeoutMs / 1000} s; got: ${this.buf.slice(-500)}`);
  }
}

/** Guest memory: under the 4 GiB and more of a box this is for, and still room for Debian 13's daemon, Kea,
 *  unbound, the console and the tests' and the health check's own Node processes side by side. */
export const GUEST_MIB = 1024;

/** What a guest was doing when a wait on it ran out: the daemon's unit and log, memory, load, the busiest processes. */
export async function postMortem(g: Guest): Promise<string> {
  const r = await g.run('systemctl status duogate --no-pager -n 0; journalctl -b -u duogate -n 30 --no-pager -o short-monotonic; ' +
    'free -m; cat /proc/loadavg; ps -eo pid,ni,rss,etime,time,args --sort=-time | head -12', 120_000).catch((e: Error) => ({ out: `(no post-mortem: ${e.message})` }));
  return r.out;
}

export class Lab {
  readonly pids = new Set<number>();
  readonly notes: string[] = [];
  readonly guests: Guest[] = [];

  constructor(readonly prefix: string, readonly runDir: string) {}

  ns(what: 'lab' | 'client' | 'server'): string { return `${this.prefix}-${what}`; }
  note(s: string): void { this.notes.push(s); }
  guest(spec: GuestSpec): Guest { const g = new Guest(this, spec); this.guests.push(g); return g; }

  /** Namespaces, bridges, taps (one per guest NIC), the LAN client and the WAN server. */
  up(): void {
    this.delNamespaces();
    const lab = this.ns('lab'), client = this.ns('client'), server = this.ns('server');
    for (const n of [lab, client, server]) sh('ip', ['netns', 'add', n], 'lab up');
    const lines: Record<string, string[]> = { [lab]: ['link set lo up'], [client]: [], [server]: [] };
    for (const b of ['brwan', 'brlan', 'brsync']) lines[lab].push(`link add ${b} type bridge stp_state 0 forward_delay 0 mcast_snooping 0`, `link set ${b} up`);
    for (const g of this.guests) for (const c of g.spec.nics) lines[lab].push(`tuntap add dev ${g.tap(c.role)} mode tap`, `link set ${g.tap(c.role)} master br${c.role} up`);
    for (const [end, ns, br, addr, gw] of [['client', client, 'brlan', '192.168.1.100/24', '192.168.1.1'], ['server', server, 'brwan', '203.0.113.10/24', '']] as const) {
      lines[lab].push(`link add p-${end} type veth peer name eth0 netns ${ns}`, `link set p-${end} master ${br} up`);
      lines[ns].push('link set lo up', `addr add ${addr} dev eth0`, 'link set eth0 up', ...(gw ? [`route add default via ${gw}`] : []));
    }
    for (const ns of [lab, client, server]) {
      const r = spawnSync('ip', ['-n', ns, '-batch', '-'], { input: lines[ns].join('\n') + '\n', encoding: 'utf8', timeout: 30_000 });
      if (r.status !== 0) throw new Error(`lab up: ip -n ${ns} -batch failed: ${r.stderr.trim()}`);
    }
  }

  /** qemu processes by PID, then the namespaces (their taps, bridges and veths go with them). */
  async down(): Promise<void> {
    for (const g of this.guests) await g.powerOff();
    for (const pid of this.pids) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
    this.pids.clear();
    this.delNamespaces();
    // The disk copies are 3 GiB apparent each; the logs stay for a post-mortem.
    for (const g of this.guests) rmSync(path.join(g.dir, 'disk.img'), { force: true });
  }

  private delNamespaces(): void {
    for (const n of [this.ns('lab'), this.ns('client'), this.ns('server')]) {
      if (existsSync(`/run/netns/${n}`)) spawnSync('ip', ['netns', 'del', n], { timeout: 10_000 });
    }
  }

  /** One ping from the client or server namespace. */
  ping(from: 'client' | 'server', dst: string): boolean {
    return spawnSync('ip', ['netns', 'exec', this.ns(from), 'ping', '-n', '-q', '-c1', '-W2', dst], { timeout: 10_000 }).status === 0;
  }

  /** ARP-resolve an address from the client or server (one ping, answered or not: the WAN firewall drops
   *  pings to the VIP, ARP still answers) and return the MAC, or null. */
  resolve(from: 'client' | 'server', addr: string): string | null {
    this.ping(from, addr);
    const r = spawnSync('ip', ['-n', this.ns(from), '-j', 'neigh', 'show', addr], { encoding: 'utf8', timeout: 10_000 });
    try {
      const e = JSON.parse(r.stdout)[0];
      return e?.lladdr && !(e.state ?? []).includes('FAILED') && !(e.state ?? []).includes('INCOMPLETE') ? e.lladdr as string : null;
    } catch { return null; }
  }

  /** The MAC the client or server has in its neighbour table for an address (after a ping). */
  neighbourMac(from: 'client' | 'server', addr: string): string | null {
    const r = spawnSync('ip', ['-n', this.ns(from), '-j', 'neigh', 'show', addr], { encoding: 'utf8', timeout: 10_000 });
    try { return (JSON.parse(r.stdout)[0]?.lladdr as string | undefined) ?? null; } catch { return null; }
  }
}
