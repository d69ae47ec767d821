// A netlink socket that overruns its receive buffer reports POLLERR; libuv turns that into an error status.
// The watch must keep going and recvInto must report the overrun (-2) so the caller can resync, instead of
// taking the process down (found by the state-sync work: conntrack event storms).
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const nativeUrl = pathToFileURL(join(root, 'host', 'io', 'native.ts')).href;
const ns = `dgtest-overrun-${process.pid}`;

t.teardown(() => { try { execFileSync('ip', ['netns', 'del', ns]); } catch { /* gone */ } });

t.test('netlink overrun: the watch callback still runs and recvInto returns -2, then events flow again', async (t) => {
  execFileSync('ip', ['netns', 'add', ns]);
  execFileSync('ip', ['-n', ns, 'link', 'add', 'ova', 'type', 'veth', 'peer', 'name', 'ovb']);
  const code = `
    import { native } from ${JSON.stringify(nativeUrl)};
    import { execFileSync } from 'node:child_process';
    const fd = native.openNetlink(0, 1, 1); // RTMGRP_LINK, smallest receive buffer the kernel allows
    const buf = new Uint8Array(65536);
    let overruns = 0, messages = 0, calls = 0, errors = 0;
    process.on('uncaughtException', () => { errors++; });
    const h = native.watch(fd, () => {
      calls++;
      for (let i = 0; i < 1000; i++) { const n = native.recvInto(fd, buf); if (n === -1) break; if (n === -2) overruns++; else messages++; }
    });
    // Flap the link many times in one synchronous burst: the loop cannot read in between, so the buffer overruns.
    const batch = Array.from({ length: 200 }, (_, i) => 'link set ova ' + (i % 2 ? 'up' : 'down')).join('\\n') + '\\n';
    execFileSync('ip', ['-batch', '-'], { input: batch });
    await new Promise((r) => setTimeout(r, 300));
    const before = messages;
    execFileSync('ip', ['link', 'set', 'ova', 'down']);
    await new Promise((r) => setTimeout(r, 300));
    native.unwatch(h); native.close(fd);
    console.log(JSON.stringify({ overruns, messages, calls, errors, after: messages - before }));
  `;
  const out = execFileSync('ip', ['netns', 'exec', ns, process.execPath, '--import=tsx', '--input-type=module', '-e', code], { cwd: root, timeout: 30_000 }).toString();
  const r = JSON.parse(out.trim().split('\n').pop()!);
  t.ok(r.overruns >= 1, `overrun reported to the reader (${r.overruns})`);
  t.equal(r.errors, 0, 'no exception reached the process');
  t.ok(r.after >= 1, 'events flow again after the overrun');
});
