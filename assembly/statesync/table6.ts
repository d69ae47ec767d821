// The IPv6 state table: table.ts for 128-byte IPv6 records (conntrack/entry.ts), kept apart so the IPv4 table,
// its 64-byte records and its lookups stay as they are. Same index, free list and send queue; 136 bytes per
// slot. Record numbers are its own (the engine tags them with V6 where they leave it: kernel sequence numbers).
import {
  REC6, O_LIVE, O_NEXT, O_HASH, O_QFLAGS, O_GEN, O_RETRIES, LIVE_FREE, LIVE_OK, LIVE_DEAD, Q_QUEUED, keyEq6, keyHash,
} from '../conntrack/entry';
import { bump, S_QUEUED } from './stats';

export let cap: u32 = 0;        // records
let idxMask: u32 = 0;           // index slots - 1
export let recs: usize = 0;     // cap * REC bytes
let idx: usize = 0;             // (idxMask + 1) u32 slots: record number + 1, 0 = empty
let freeHead: u32 = 0;          // record number + 1
let highWater: u32 = 0;         // records ever handed out (never-used records need no free list)
export let count: u32 = 0;      // live + dead records
let qHead: u32 = 0;             // send queue, record number + 1
let qTail: u32 = 0;
export let qLen: u32 = 0;
export let gen: u32 = 1;

/** Bytes of table memory per state slot (record + its share of the index). */
export function bytesPerSlot(): u32 { return REC6 + 8; }

/** Allocate the table once (capacity rounded up to a power of two). Returns false if already sized differently. */
export function init(capacity: u32): bool {
  let c: u32 = 1024;
  while (c < capacity && c < (1 << 24)) c <<= 1;
  if (recs != 0) { if (c != cap) return false; clear(); return true; }
  cap = c;
  idxMask = c * 2 - 1;
  recs = heap.alloc(<usize>c * REC6);
  idx = heap.alloc(<usize>(idxMask + 1) * 4);
  clear();
  return true;
}

export function clear(): void {
  memory.fill(idx, 0, <usize>(idxMask + 1) * 4);
  // Records are zeroed lazily on allocation; only the bookkeeping resets.
  freeHead = 0; highWater = 0; count = 0; qHead = 0; qTail = 0; qLen = 0;
}

// @ts-ignore: decorator
@inline export function rec(i: u32): usize { return recs + <usize>i * REC6; }

/** Record number holding `key`'s entry (live or dead), or -1. */
export function find(key: usize, h: u32): i32 {
  let s = h & idxMask;
  for (let n: u32 = 0; n <= idxMask; n++) {
    const v = load<u32>(idx + (<usize>s << 2));
    if (v == 0) return -1;
    const r = rec(v - 1);
    if (load<u32>(r + O_HASH) == h && keyEq6(r, key)) return <i32>(v - 1);
    s = (s + 1) & idxMask;
  }
  return -1;
}

/** Insert a copy of the 128 bytes at `src` (key not present). Returns its record number, or -1 when full. */
export function insert(src: usize, h: u32): i32 {
  let i: u32;
  if (freeHead != 0) { i = freeHead - 1; freeHead = load<u32>(rec(i) + O_NEXT); }
  else if (highWater < cap) { i = highWater++; }
  else return -1;
  const r = rec(i);
  memory.copy(r, src, REC6);
  store<u8>(r + O_LIVE, LIVE_OK); store<u8>(r + O_QFLAGS, 0); store<u8>(r + O_RETRIES, 0);
  store<u32>(r + O_NEXT, 0); store<u32>(r + O_HASH, h); store<u32>(r + O_GEN, gen);
  let s = h & idxMask;
  while (load<u32>(idx + (<usize>s << 2)) != 0) s = (s + 1) & idxMask;
  store<u32>(idx + (<usize>s << 2), i + 1);
  count++;
  return <i32>i;
}

/** Remove record `i` from the index and put it on the free list. It must not be in the send queue. */
export function free(i: u32): void {
  const r = rec(i);
  let s = load<u32>(r + O_HASH) & idxMask;
  while (load<u32>(idx + (<usize>s << 2)) != i + 1) s = (s + 1) & idxMask;
  // Backward-shift deletion: pull later members of the probe run into the hole so lookups need no tombstones.
  let hole = s;
  let j = (s + 1) & idxMask;
  while (true) {
    const v = load<u32>(idx + (<usize>j << 2));
    if (v == 0) break;
    const home = load<u32>(rec(v - 1) + O_HASH) & idxMask;
    // Move v into the hole if its home is not cyclically within (hole, j].
    if (((j - home) & idxMask) >= ((j - hole) & idxMask)) {
      store<u32>(idx + (<usize>hole << 2), v);
      hole = j;
    }
    j = (j + 1) & idxMask;
  }
  store<u32>(idx + (<usize>hole << 2), 0);
  store<u8>(r + O_LIVE, LIVE_FREE);
  store<u32>(r + O_NEXT, freeHead);
  freeHead = i + 1;
  count--;
}

/** Queue record `i` for sending; a record already queued stays where it is (its newest contents go). */
export function enqueue(i: u32): void {
  const r = rec(i);
  const q = load<u8>(r + O_QFLAGS);
  if (q & Q_QUEUED) return;
  store<u8>(r + O_QFLAGS, q | Q_QUEUED);
  store<u32>(r + O_NEXT, 0);
  if (qTail == 0) qHead = i + 1; else store<u32>(rec(qTail - 1) + O_NEXT, i + 1);
  qTail = i + 1;
  qLen++;
  bump(S_QUEUED);
}

/** Pop the oldest queued record number, or -1. */
export function dequeue(): i32 {
  if (qHead == 0) return -1;
  const i = qHead - 1;
  const r = rec(i);
  qHead = load<u32>(r + O_NEXT);
  if (qHead == 0) qTail = 0;
  store<u32>(r + O_NEXT, 0);
  store<u8>(r + O_QFLAGS, load<u8>(r + O_QFLAGS) & ~Q_QUEUED);
  qLen--;
  return <i32>i;
}

/** Drop the queue without sending (peer restarted before it acknowledged; a bulk follows). Dead records are freed. */
export function dropQueue(): void {
  for (let i = dequeue(); i >= 0; i = dequeue()) if (load<u8>(rec(<u32>i) + O_LIVE) == LIVE_DEAD) free(<u32>i);
}

/** Queue every live record (bulk send). Returns how many. */
export function queueAll(): u32 {
  let n: u32 = 0;
  for (let i: u32 = 0; i < highWater; i++) {
    if (load<u8>(rec(i) + O_LIVE) == LIVE_OK) { enqueue(i); n++; }
  }
  return n;
}

/** Number of records handed out so far (iteration bound). */
export function span(): u32 { return highWater; }
/** Live state of record `i`. */
export function liveOf(i: u32): u8 { return load<u8>(rec(i) + O_LIVE); }
export function isDead(i: u32): bool { return load<u8>(rec(i) + O_LIVE) == LIVE_DEAD; }
export function hashOf(p: usize): u32 { return keyHash(p); }
