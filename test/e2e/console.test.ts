// `duogate console` driven like an operator on a serial line: tmux (80x24, TERM=dumb) runs it inside the
// primary's namespace; send-keys types, capture-pane reads the screen. Checks the status screen, entering and
// leaving maintenance (CARP states really change on both nodes), the LAN address and NIC edits, the shell,
// and that colour appears only on a colour terminal. Needs root; prefix 'dgt-con'.
import t from 'tap';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { VirtualBoard } from '../../board/virtual/board.js';
import { CLI, Firmware, ROOT, allAre, sleep } from '../../board/virtual/firmware.js';

const PREFIX = 'dgt-con';
if (process.getuid?.() !== 0) {
  t.plan(0, 'virtual board needs root');
} else {
  const board = new VirtualBoard({ prefix: PREFIX });
  const fw = new Firmware(board);
  const tmuxSock = path.join(board.runDir, 'tmux.sock');
  const tmux = (...args: string[]) => board.exec('primary', 'tmux', ['-S', tmuxSock, ...args], { timeoutMs: 5000 });
  const screen = (session = 'con', escapes = false) => tmux('capture-pane', '-p', ...(escapes ? ['-e'] : []), '-t', session).stdout;
  const keys = (text: string, session = 'con') => { tmux('send-keys', '-t', session, '-l', text); tmux('send-keys', '-t', session, 'Enter'); };
  /** Poll the screen (bounded) until `pred` holds; returns the last screen either way. */
  const waitScreen = async (pred: (s: string) => boolean, ms: number, opts: { refresh?: boolean; session?: string } = {}) => {
    const end = Date.now() + ms;
    let s = '';
    for (let i = 0; i < 500 && Date.now() < end; i++) {
      s = screen(opts.session);
      if (pred(s)) return { ok: true, s };
      if (opts.refresh && /Select \[1\]: $/m.test(s.trimEnd().split('\n').pop() + ' ')) keys('1', opts.session);
      await sleep(opts.refresh ? 400 : 100);
    }
    return { ok: false, s };
  };
  /** The VHID rows of the status screen: { '1': ['MASTER', 'BACKUP'] } (own state, peer's state). */
  const rows = (s: string) => Object.fromEntries([...s.matchAll(/^ {2}(\d+)\s+(?:lan|wan)\s+\S+\s+(MASTER|BACKUP|INIT)\s+(MASTER|BACKUP|INIT|\?|lost)/gm)].map((m) => [m[1], [m[2], m[3]]]));
  const lastScreen = (s: string) => s.slice(s.lastIndexOf('duogate console'));
  // tap runs tests with NO_COLOR=1: each session gets exactly the environment under test.
  const start = (session: string, term: string, extraEnv: string[] = []) => tmux('new-session', '-d', '-x', '80', '-y', '24', '-s', session, '-c', ROOT,
    'env', '-u', 'NO_COLOR', '-u', 'FORCE_COLOR', `TERM=${term}`, 'SHELL=/bin/sh', ...extraEnv, process.execPath, CLI, 'console', '--config', fw.configFile('primary'), '--socket', fw.socket('primary'), '--state-dir', fw.stateDir('primary'));

  t.teardown(async () => { tmux('kill-server'); await board.down(); });

  t.test('status screen on a dumb 80x24 terminal', async (t) => {
    await board.up();
    fw.resetState();
    // CARP and the peer heartbeat (the status screen shows the peer); the other features have their own tests.
    fw.writeConfigs('con', { edit: (c) => { c.peer = { key: 'console-test-peer-key-0123456789', interval_ms: 500 }; } });
    await fw.start('primary', 20_000);
    await sleep(300);
    await fw.start('secondary', 20_000);
    t.ok(await fw.waitStates((p, s) => allAre(p, 'MASTER') && allAre(s, 'BACKUP'), 8000), 'pair converged');
    t.equal(start('con', 'dumb').status, 0, 'tmux session started');
    const r = await waitScreen((s) => /Peer secondary: sync link ok, LAN ok/.test(s) && /Select \[1\]:/.test(s), 8000, { refresh: true });
    t.ok(r.ok, 'status screen with the peer heard on both paths');
    const s = lastScreen(r.s);
    t.comment('\n' + s);
    t.match(s, /duogate console {2}node primary \(primary\)/);
    t.match(s, /CARP MASTER {3}maintenance off/);
    t.same(rows(s), { 1: ['MASTER', 'BACKUP'], 2: ['MASTER', 'BACKUP'] }, 'every VIP with its state and the peer\'s');
    // Every network, the board's third internal network (guest0) too: device, link, address, CARP state, VIPs.
    t.match(s, /^ {2}NETWORK {2}DEVICE {5}LINK {2}ADDRESS {12}CARP {4}VIPS$/m, 'the networks table');
    t.match(s, /^ {2}guest {4}guest0 {5}up {4}192\.168\.20\.2\/24 {4}MASTER {2}192\.168\.20\.1\/24$/m, 'the guest network with its VIP');
    t.match(s, /^ {2}sync {5}sync0 {6}up {4}172\.16\.1\.1\/30 {6}- {7}-$/m, 'the sync link');
    t.match(s, /Alarms: none/);
    t.match(s, /2\) Enter maintenance mode/);
    t.ok(s.split('\n').length <= 24 && s.split('\n').every((l) => l.length <= 80), 'the whole screen fits 80x24');
    t.notMatch(screen('con', true), /\x1b\[[0-9;]*m/, 'no colour escapes with TERM=dumb');
  });

  t.test('enter and leave maintenance from the menu: the CARP states follow', async (t) => {
    keys('2');
    const on = await waitScreen((s) => { const x = rows(lastScreen(s)); return /maintenance ON/.test(lastScreen(s)) && x['1']?.[0] === 'BACKUP' && x['2']?.[0] === 'BACKUP' && x['1']?.[1] === 'MASTER'; }, 8000, { refresh: true });
    t.ok(on.ok, 'screen: maintenance ON, this node BACKUP, the peer MASTER');
    t.match(lastScreen(on.s), /2\) Leave maintenance mode/);
    t.same(await fw.states('primary'), { 1: 'BACKUP', 2: 'BACKUP', 3: 'BACKUP' }, 'primary daemon: BACKUP');
    t.same(await fw.states('secondary'), { 1: 'MASTER', 2: 'MASTER', 3: 'MASTER' }, 'secondary daemon: MASTER');
    keys('2');
    const off = await waitScreen((s) => { const x = rows(lastScreen(s)); return /maintenance off/.test(lastScreen(s)) && x['1']?.[0] === 'MASTER' && x['2']?.[0] === 'MASTER' && x['1']?.[1] === 'BACKUP'; }, 8000, { refresh: true });
    t.ok(off.ok, 'screen: maintenance off, MASTER again, the peer BACKUP');
    t.same(await fw.states('primary'), { 1: 'MASTER', 2: 'MASTER', 3: 'MASTER' }, 'primary daemon: MASTER (preempt)');
    t.same(await fw.states('secondary'), { 1: 'BACKUP', 2: 'BACKUP', 3: 'BACKUP' });
  });

  t.test('LAN address: shown, a bad one refused, a good one saved with the comments kept', async (t) => {
    const file = fw.configFile('primary');
    keys('3');
    let r = await waitScreen((s) => /New LAN address\/prefix/.test(s), 3000);
    t.match(r.s, /LAN \(lan0\) in .*: 192\.168\.1\.2\/24/);
    t.match(r.s, /on the interface now: 192\.168\.1\.2\/24 192\.168\.1\.1\/24/, 'live addresses, with the VIP');
    keys('10.9.9.2/24');
    r = await waitScreen((s) => /not saved/.test(s), 3000);
    t.match(r.s.replace(/\n {2}/g, ' '), /not saved: interfaces\.lan\.peer: 192\.168\.1\.3 is outside 10\.9\.9\.2\/24.*carp\.vips\[0\]\.address: 192\.168\.1\.1 is outside lan's subnet/s, 'peer and VIP would leave the subnet: refused, every reason shown');
    t.match(readFileSync(file, 'utf8'), /address: 192\.168\.1\.2\/24/, 'file untouched');
    keys('');
    keys('3');
    await waitScreen((s) => /New LAN address\/prefix/.test(s.slice(s.lastIndexOf('LAN (lan0)'))), 3000);
    keys('192.168.1.4/24');
    r = await waitScreen((s) => /Saved: interfaces\.lan\.address = 192\.168\.1\.4\/24/.test(s), 3000);
    t.ok(r.ok, 'saved');
    const text = readFileSync(file, 'utf8');
    t.match(text, /lan: *\{ *device: lan0, address: 192\.168\.1\.4\/24/, 'new address in place');
    t.match(text, /# duogate node config/, 'comments kept');
    keys('');
  });

  t.test('assign NICs by MAC', async (t) => {
    const file = fw.configFile('primary');
    keys('4');
    let r = await waitScreen((s) => /MAC for wan/.test(s), 3000);
    t.match(r.s, /lan0 +02:d6:01:01:00:01 +yes +lan/, 'NIC table: name, MAC, carrier, role');
    t.match(r.s, /sync0 +02:d6:01:03:00:01 +yes +sync/);
    keys('aa:bb:cc:dd:ee:ff'); keys(''); keys('');
    r = await waitScreen((s) => /no NIC has MAC aa:bb:cc:dd:ee:ff/.test(s), 3000);
    t.ok(r.ok, 'unknown MAC refused');
    keys('');
    keys('4');
    await waitScreen((s) => /MAC for wan/.test(s.slice(s.lastIndexOf('NIC '))), 3000);
    keys('02:d6:01:01:00:01'); keys(''); keys('');
    r = await waitScreen((s) => /02:d6:01:01:00:01 is already given to wan: each role needs its own NIC/.test(s), 3000);
    t.ok(r.ok, 'one NIC for two roles refused');
    keys('');
    keys('4');
    await waitScreen((s) => /MAC for wan/.test(s.slice(s.lastIndexOf('NIC '))), 3000);
    keys('02:D6:01:02:00:01'); keys(''); keys('');
    r = await waitScreen((s) => /Saved: wan=wan0 \(02:d6:01:02:00:01\)/.test(s), 3000);
    t.ok(r.ok, 'wan pinned to its MAC');
    if (!r.ok) t.comment(r.s);
    t.match(readFileSync(file, 'utf8'), /wan: *\{[^}]*mac: 02:d6:01:02:00:01/);
    keys('');
  });

  t.test('shell and exit', async (t) => {
    keys('7');
    await waitScreen((s) => /type "exit" to come back/.test(s), 3000);
    keys('echo SHELL-OK-$DUOGATE_CONSOLE-$DUOGATE_SHELL');
    t.ok((await waitScreen((s) => /^SHELL-OK-1-1$/m.test(s), 3000)).ok, 'a shell runs on the console (marked, so a login profile does not start the menu again)');
    keys('exit');
    t.ok((await waitScreen((s) => /Select \[1\]: *$/.test(s.trimEnd()), 3000)).ok, 'back at the menu');
    keys('0');
    await sleep(500);
    t.notMatch(tmux('list-sessions').stdout, /^con:/m, '0 leaves the console (the session ends)');
  });

  t.test('colour on a colour terminal, none with NO_COLOR', async (t) => {
    start('color', 'xterm-256color');
    start('nocolor', 'xterm-256color', ['NO_COLOR=1']);
    t.ok((await waitScreen((s) => /Select \[1\]:/.test(s), 5000, { session: 'color' })).ok);
    t.ok((await waitScreen((s) => /Select \[1\]:/.test(s), 5000, { session: 'nocolor' })).ok);
    const colored = screen('color', true);
    t.match(colored, /\x1b\[[0-9;]*32m\s*MASTER/, 'MASTER in green');
    t.notMatch(screen('nocolor', true), /\x1b\[[0-9;]*3\dm/, 'NO_COLOR: no colours');
  });
}
