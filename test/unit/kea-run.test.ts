// The installed kea-dhcp4 starts with the config and the environment the DHCP service gives it, and answers on its
// control socket. `kea-dhcp4 -t` is not enough: Kea 2.6.3+ (Debian 13) accepts a socket or lease path outside its
// allowed directories under -t and refuses it only when the server starts. Runs the real Kea in a throwaway
// network namespace (the LAN device and the sync address present, as on a node), killed by PID.
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseConfigText } from '../../host/config/load.js';
import { ensureKeaDir, keaCommand, keaConfig, keaEnv, keaPaths, keaVersion } from '../../host/gateway/dhcp/kea.js';
import { ensureHaTls, pairSecret } from '../../host/gateway/dhcp/hatls.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'dg-kea-run-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

/** Start Kea on the board's primary config in state dir `sd`; resolves with the status-get answer or the log. */
async function startKea(t: Test, sd: string, prepare: (p: ReturnType<typeof keaPaths>) => void) {
  const c = parseConfigText(readFileSync(path.join(ROOT, 'board/virtual/primary.yaml'), 'utf8'));
  c.state_dir = sd;
  const p = keaPaths(sd);
  prepare(p);
  const tls = !!pairSecret(c);
  if (tls) ensureHaTls(c);
  writeFileSync(p.config, JSON.stringify(keaConfig(c, sd, { tls, basicAuth: false }), null, 2));
  const lan = c.interfaces.lan.device;
  const sync = c.interfaces.sync.address;
  const child = spawn('unshare', ['--net', 'sh', '-c',
    'ip link add name "$1" type veth peer name dgkrpeer && ip link set "$1" up && ip link set dgkrpeer up && ' +
    // The board's guest network: Kea serves its scope on guest0 too.
    'ip link add name "$4" type veth peer name dgkrpeer2 && ip link set "$4" up && ip link set dgkrpeer2 up && ' +
    'ip link set lo up && ip addr add "$2" dev lo && exec kea-dhcp4 -c "$3"', 'sh', lan, sync, p.config, c.interfaces.guest!.device],
  { env: { ...process.env, ...keaEnv(p) }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { out += d; });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  t.teardown(() => { if (child.exitCode === null && child.pid) process.kill(child.pid, 'SIGKILL'); });
  let answer: any = null;
  let gone: number | null | undefined;
  void exited.then((code) => { gone = code; });
  for (let i = 0; i < 100 && answer === null && gone === undefined; i++) { // 10 s at most
    await new Promise((r) => setTimeout(r, 100));
    if (existsSync(p.socket)) answer = await keaCommand(p.socket, 'status-get').catch(() => null);
  }
  if (child.exitCode === null && child.pid) process.kill(child.pid, 'SIGTERM');
  await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
  return { answer, out, p };
}

const version = keaVersion();
t.ok(version, `kea-dhcp4 -V runs (${version})`);

t.test('Kea starts with the generated config in the service environment and answers status-get', async (t) => {
  const sd = path.join(tmp, 'fresh');
  const { answer, out, p } = await startKea(t, sd, ensureKeaDir);
  t.equal(statSync(p.dir).mode & 0o777, 0o750, 'the kea dir is 0750 (Kea 2.6.3+ refuses a socket dir with any other mode)');
  t.equal(answer?.result, 0, `status-get answered on ${p.socket}${answer ? '' : `; Kea said: ${out.split('\n').filter((l) => /ERROR|FATAL/.test(l)).slice(0, 2).join(' | ')}`}`);
  t.ok(answer?.arguments?.['high-availability']?.[0]?.['ha-servers']?.local, 'the HA hook reports this server');
  t.ok(existsSync(p.leases), 'the lease file is in the node\'s kea dir');
});

t.test('an existing kea dir with a wider mode is narrowed before Kea starts', async (t) => {
  const sd = path.join(tmp, 'wide');
  const { answer, p } = await startKea(t, sd, (p) => {
    // What an older duogate, or a state dir made by hand, may leave (chmod: mkdir's mode is masked by the umask).
    mkdirSync(p.dir, { recursive: true });
    chmodSync(p.dir, 0o755);
    ensureKeaDir(p);
  });
  t.equal(statSync(p.dir).mode & 0o777, 0o750);
  t.equal(answer?.result, 0, 'status-get answered');
});
