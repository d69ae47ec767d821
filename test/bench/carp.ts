// CARP core figures: adverts parsed+verified per second (against a pure node:crypto verifier in the same run,
// as a ratio), and the cost of one election step (timer → advert built and queued).
import { createHmac } from 'node:crypto';
import { Core, wasmPath } from '../../host/core/core.js';
import { pairKey } from '../../host/daemon/pair.js';
import { advert, ipv4, ipv6 } from '../helpers/carp.js';
import type { Bench } from './registry.js';

function advertDatagram(): Buffer {
  // vhid 1, skew 0 (a better master than the bench node), password "secret", VIP 192.168.1.1.
  const b = Buffer.alloc(56);
  b[0] = 0x45; b.writeUInt16BE(56, 2); b[8] = 255; b[9] = 112;
  Buffer.from([192, 168, 1, 2]).copy(b, 12); Buffer.from([224, 0, 0, 18]).copy(b, 16);
  const c = b.subarray(20);
  c[0] = 0x21; c[1] = 1; c[2] = 0; c[3] = 7; c[5] = 1;
  c.writeBigUInt64BE(0x0102030405060708n, 8);
  createHmac('sha1', 'secret').update(Buffer.concat([Buffer.from([2, 1, 1, 192, 168, 1, 1]), c.subarray(8, 16)])).digest().copy(c, 16);
  let s = 0; for (let i = 0; i < 36; i += 2) s += c.readUInt16BE(i);
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  c.writeUInt16BE(~s & 0xffff, 6);
  return b;
}

export const carpBench: Bench = async (say) => {
  const core = new Core();
  core.reset([1, 2]);
  core.setLinkAddr(0, '192.168.1.3');
  core.addVhid({ vhid: 1, link: 0, advbase: 1, advskew: 100, password: 'secret', vips: ['192.168.1.1'] });
  core.start(0); core.drain();
  const pkt = advertDatagram();
  const rx = core.rxView();
  rx.set(pkt);
  const N = 300_000;
  // Warm-up, then parse + checksum + HMAC verify + election on the zero-copy path.
  for (let i = 0; i < 20_000; i++) core.handleCarpInPlace(i, 0, pkt.length);
  let t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) core.handleCarpInPlace(20_000 + i, 0, pkt.length);
  const coreNs = Number(process.hrtime.bigint() - t0) / N;
  if (core.stats().accepted !== N + 20_000) throw new Error(`bench advert not accepted: ${JSON.stringify(core.stats())}`);

  // The same, over IPv6 (carp.md "CARP over IPv6"): the 40-byte header the daemon lays out, a v6 VIP in the HMAC.
  const core6 = new Core();
  core6.reset([1, 2]);
  core6.setLinkAddr6(0, 'fe80::3');
  core6.addVhid({ vhid: 1, link: 0, advbase: 1, advskew: 100, password: 'secret', vips: ['2001:db8:1::1'] });
  core6.start(0); core6.drain();
  const pkt6 = ipv6(advert({ vhid: 1, advskew: 0, advbase: 1, counter: 0x0102030405060708n }, 'secret', ['2001:db8:1::1']), 'fe80::2');
  const rx6 = core6.rxView();
  rx6.set(pkt6);
  for (let i = 0; i < 20_000; i++) core6.handleCarpInPlace(i, 0, pkt6.length);
  t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) core6.handleCarpInPlace(20_000 + i, 0, pkt6.length);
  const core6Ns = Number(process.hrtime.bigint() - t0) / N;
  if (core6.stats().accepted !== N + 20_000) throw new Error(`bench IPv6 advert not accepted: ${JSON.stringify(core6.stats())}`);

  // The same verification done in JS with node:crypto (what a host-side check would cost), same run.
  const key = Buffer.from('secret');
  const msg = Buffer.alloc(15); msg.set([2, 1, 1, 192, 168, 1, 1]);
  let ok = 0;
  for (let i = 0; i < 20_000; i++) { pkt.copy(msg, 7, 28, 36); ok += createHmac('sha1', key).update(msg).digest().equals(pkt.subarray(36, 56)) ? 1 : 0; }
  t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) { pkt.copy(msg, 7, 28, 36); ok += createHmac('sha1', key).update(msg).digest().equals(pkt.subarray(36, 56)) ? 1 : 0; }
  const jsNs = Number(process.hrtime.bigint() - t0) / N;

  // Election step: a MASTER's advert timer fires → counter, HMAC, checksum, action queued and drained.
  const m = new Core();
  m.reset([3, 4]); m.setLinkAddr(0, '192.168.1.2');
  m.addVhid({ vhid: 1, link: 0, advbase: 1, advskew: 0, password: 'secret', vips: ['192.168.1.1'] });
  m.start(0); m.handleTimeout(3000); m.drain();
  let now = 3000;
  const S = 200_000;
  t0 = process.hrtime.bigint();
  for (let i = 0; i < S; i++) { now += 1000; m.handleTimeout(now); while (m.x.pollAction() !== 0); }
  const stepNs = Number(process.hrtime.bigint() - t0) / S;

  // Paired (docs/security.md): the same path plus the source check, the trailer HMAC and the replay check, on
  // adverts a paired master really sent (each with a fresh counter); and what a replayed copy costs to refuse.
  const pkey = pairKey('bench-pair-key-0123456789', 1);
  const pm = new Core();
  pm.reset([5, 6]); pm.setEpoch(7); pm.setLinkAddr(0, '192.168.1.2');
  pm.addVhid({ vhid: 1, link: 0, advbase: 1, advskew: 0, password: 'secret', vips: ['192.168.1.1'], peer: '192.168.1.3', pairKey: pkey });
  pm.start(0); pm.handleTimeout(3000); pm.drain();
  const P = 100_000;
  const sent: Buffer[] = [];
  for (let i = 0, t = 3000; i < P + 10_000; i++) { t += 1000; pm.handleTimeout(t); for (const a of pm.drain()) if (a.type === 'advert') sent.push(ipv4(a.payload, '192.168.1.2')); }
  const pb = new Core();
  pb.reset([7, 8]); pb.setLinkAddr(0, '192.168.1.3');
  pb.addVhid({ vhid: 1, link: 0, advbase: 1, advskew: 100, password: 'secret', vips: ['192.168.1.1'], peer: '192.168.1.2', pairKey: pkey });
  pb.start(0); pb.drain();
  const prx = pb.rxView();
  for (let i = 0; i < 10_000; i++) { prx.set(sent[i]); pb.handleCarpInPlace(i, 0, sent[i].length); }
  t0 = process.hrtime.bigint();
  for (let i = 10_000; i < P + 10_000; i++) { prx.set(sent[i]); pb.handleCarpInPlace(i, 0, sent[i].length); }
  const pairedNs = Number(process.hrtime.bigint() - t0) / P;
  if (pb.stats().accepted !== P + 10_000) throw new Error(`bench paired advert not accepted: ${JSON.stringify(pb.stats())}`);
  const old = sent[5_000];
  prx.set(old);
  t0 = process.hrtime.bigint();
  for (let i = 0; i < P; i++) pb.handleCarpInPlace(200_000 + i, 0, old.length);
  const replayNs = Number(process.hrtime.bigint() - t0) / P;
  if (pb.stats().replay !== P) throw new Error(`bench replay not refused: ${JSON.stringify(pb.stats())}`);

  const r = {
    adverts_per_s: Math.round(1e9 / coreNs), advert_ns: Math.round(coreNs), advert6_ns: Math.round(core6Ns),
    paired_advert_ns: Math.round(pairedNs), paired_vs_plain: Math.round((pairedNs / coreNs) * 100) / 100,
    replay_drop_ns: Math.round(replayNs),
    js_crypto_verify_ns: Math.round(jsNs), core_vs_node_crypto: Math.round((jsNs / coreNs) * 100) / 100,
    election_step_ns: Math.round(stepNs), wasm_bytes: (await import('node:fs')).statSync(wasmPath()).size,
  };
  say(`advert parse + checksum + HMAC verify + election: ${r.advert_ns} ns (${r.adverts_per_s.toLocaleString('en')} adverts/s)`);
  say(`the same over IPv6 (v6 VIP, 40-byte header):      ${r.advert6_ns} ns`);
  say(`same HMAC check with node:crypto alone:          ${r.js_crypto_verify_ns} ns  → core is ${r.core_vs_node_crypto}x`);
  say(`paired advert (+ source, trailer HMAC, replay check): ${r.paired_advert_ns} ns (${r.paired_vs_plain}x the plain path; includes copying each advert into the receive buffer)`);
  say(`a replayed paired advert refused:                ${r.replay_drop_ns} ns`);
  say(`election step (timer → advert built and queued):  ${r.election_step_ns} ns`);
  say(`core.wasm: ${r.wasm_bytes} bytes`);
  return r;
};
