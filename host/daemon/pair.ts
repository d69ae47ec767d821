// CARP between two duogate nodes (docs/security.md): whether a node signs and demands the pair trailer, the
// trailer's key per vhid, and the node's epoch. Paired adverts count
// from epoch << 32 and the peer refuses any counter it has already passed, so the epoch must grow at every
// start. It is kept in the state directory (written and fsynced before the first advert) and never falls
// below the wall clock's seconds, so a box whose state was wiped still starts above its old counters unless
// its clock is also behind.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createHmac } from 'node:crypto';
import { writeFileAtomic } from '../io/atomic.js';
import type { Config } from '../config/schema.js';

const MAX = 0xffff_ffff;

/** The next epoch: above the stored one and not below `nowS`; persisted before it is returned. */
export function nextEpoch(stateDir: string, nowS = Math.floor(Date.now() / 1000)): number {
  const file = path.join(stateDir, 'carp-epoch');
  let stored = 0;
  try {
    const n = Number(readFileSync(file, 'utf8').trim());
    if (Number.isInteger(n) && n >= 0 && n <= MAX) stored = n;
  } catch { /* first start */ }
  // At the top of the range there is nowhere to grow: the peer would refuse us. Refuse to start instead.
  if (stored >= MAX) throw Object.assign(new Error(`${file}: CARP epoch exhausted (${stored}); clear it on both nodes at the same time`), { code: 'DG_ERR_CARP_EPOCH' });
  const next = Math.max(stored + 1, Math.min(Math.max(0, Math.floor(nowS)), MAX));
  writeFileAtomic(file, `${next}\n`);
  return next;
}

/**
 * The key of a vhid's pair trailer: HMAC-SHA256 of the pair's shared key over a label and the vhid, cut to
 * 20 bytes (one HMAC-SHA1 block key). Per vhid, so one vhid's adverts can never be passed off as another's.
 */
export function pairKey(sharedKey: string, vhid: number): Uint8Array {
  return createHmac('sha256', sharedKey).update(`duogate carp pair v1 vhid ${vhid}`).digest().subarray(0, 20);
}

/**
 * The pair's shared key when this node authenticates CARP as a duogate pair, else null (plain CARP, e.g. with
 * a ucarp or BSD peer). On by default wherever the peer heartbeat's key is configured; `carp.pair_auth: false`
 * turns it off, and `true` without `peer.key` is refused by the config checks.
 */
export function pairAuthKey(c: Config): string | null {
  const key = (c.peer as { key?: unknown } | undefined)?.key;
  if (c.carp.pair_auth === false || typeof key !== 'string' || key.length === 0) return null;
  return key;
}
