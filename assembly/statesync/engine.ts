// State sync engine (sans-IO). Inputs: ctnetlink bytes (events, dump replies, kernel answers to our
// injections), peer payloads (wire items), and the clock. Outputs: the table, batches of wire items
// for the peer (TXB), and ctnetlink requests for the local kernel (NLTX). The host owns every socket.
import {
  REC, ENT, O_LIVE, O_PROTO, O_OSRC, O_ODST, O_RSRC, O_STATUS, O_TIMEOUT, O_MARK, O_TCPSTATE, O_PRESENT, O_QFLAGS,
  O_RETRIES, O_GEN, O_SEEN, LIVE_OK, LIVE_DEAD, PRESENT_TCP, PRESENT_MARK, PRESENT_TIMEOUT, PRESENT_REPLY,
  Q_QUEUED, contentDiffers, contentDiffers6, keyHash, REC6, O6_RSRC,
} from '../conntrack/entry';
import {
  NLMSG_HDRLEN, NLMSG_ERROR, NLMSG_DONE, CT_NEW, CT_DELETE, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP, IPPROTO_ICMPV6, EEXIST, ENOENT,
} from '../conntrack/constants';
import { parseCt, parsedV6, PARSE_OK, PARSE_FAMILY } from '../conntrack/parse';
import { buildCreate, buildCreate6, buildUpdate, buildDelete, buildLiberal, buildBarrier, MAX_REQUEST, SEQ_BARRIER } from '../conntrack/build';
import * as table from './table';
import * as table6 from './table6';
import {
  encodeUpsert, encodeDelete, encodeUpsert6, encodeDelete6, decodeItem, decodedV6, UPSERT_LEN, DELETE_LEN, UPSERT6_LEN, DELETE6_LEN,
  OP_UPSERT, OP_UPSERT6,
} from './codec';
import {
  bump, setStat, S_NL_MSGS, S_OWN_ECHO, S_FILTERED, S_UNSUPPORTED, S_MALFORMED, S_TABLE_FULL, S_TX_UPSERTS,
  S_TX_DELETES, S_RX_UPSERTS, S_RX_DELETES, S_RX_BAD_ITEMS, S_K_CREATES, S_K_UPDATES, S_K_DELETES, S_K_ERRORS,
  S_K_EEXIST_FIXED, S_K_ENOENT_FIXED, S_DUMP_ENTRIES, S_SWEPT, S_EVENTS, S_LAST_ERRNO, S_RX_TO_SELF, S_RX_ZONE,
  S_RX_MARK, S_RX_SNAT, S_RX_DNAT, S_RX_TIMEOUT_CLAMPED, S_V6_HELD,
} from './stats';
import {
  checkUpsert, checkUpsert6, clampTimeout, isVip, ownEntry6, natFree6, POLICY_OK, POLICY_TO_SELF, POLICY_ZONE, POLICY_MARK, POLICY_SNAT,
} from './policy';

// ---- buffers (static; the host views them through pointers) ----
export const NLRX_CAP: u32 = 256 * 1024;
export const NLRX = memory.data(NLRX_CAP, 16);
export const NLTX_CAP: u32 = 512 * 1024;
export const NLTX = memory.data(NLTX_CAP, 16);
export const PEER_CAP: u32 = 65536;
export const PEER = memory.data(PEER_CAP, 16);
export const TXB_CAP: u32 = 65536;
export const TXB = memory.data(TXB_CAP, 16);
export const IGN_MAX: u32 = 64;
export const IGN = memory.data(IGN_MAX * 4, 16);

/** Requests are flushed by the host once NLTX holds this much; a single call never adds more than the slack. */
const NLTX_SOFT: u32 = NLTX_CAP - 160 * 1024;

// Sequence numbers of our kernel requests: record number << 3 | what.
const K_CREATE: u32 = 1;
const K_UPDATE: u32 = 2;
const K_DELETE: u32 = 3;
const K_LIBERAL: u32 = 4;
const K_FIXDEL: u32 = 5;
// A received delete for a record still queued to the peer: free it when dequeued, send nothing.
const Q_SILENT: u8 = 2;
// IPv6 records are numbered in their own table (table6.ts); outside it (kernel sequence numbers, table passes)
// their numbers carry this tag. Record numbers stay below 2^24, so a tagged one still fits `seq >> 3`.
export const V6: u32 = 1 << 24;

/** Record `i`, IPv6 when tagged. */
// @ts-ignore: decorator
@inline function R(i: u32): usize { return (i & V6) ? table6.rec(i & ~V6) : table.rec(i); }

export let nlTxLen: u32 = 0;
export let txLen: u32 = 0;
let ownPid: u32 = 0;
let ignCount: u32 = 0;
let subnetAddr: u32 = 0;
let subnetMask: u32 = 0;
/** ssFlags() bits. */
export const FLAG_DONE: u32 = 1;
export const FLAG_BARRIER: u32 = 2;
/** Set when an NLMSG_DONE (dump end) was read; cleared by the host. */
export let doneSeen: bool = false;
/** Set when the barrier's answer was read. */
export let barrierSeen: bool = false;

export function setOwnPid(pid: u32): void { ownPid = pid; }
/** Ignore list: IGN holds `n` raw IPv4 addresses; plus one subnet (raw address and mask). */
export function setIgnore(n: u32, subnet: u32, mask: u32): void {
  ignCount = n < IGN_MAX ? n : IGN_MAX; subnetAddr = subnet & mask; subnetMask = mask;
}
export function resetFlags(): void { doneSeen = false; barrierSeen = false; }

function ignored(a: u32): bool {
  if (subnetMask != 0 && (a & subnetMask) == subnetAddr) return true;
  for (let i: u32 = 0; i < ignCount; i++) if (load<u32>(IGN + (<usize>i << 2)) == a) return true;
  return false;
}

// @ts-ignore: decorator
@inline function clock(now: f64): u32 { return <u32>(<u64>now); }

/** Seconds left of a record's timeout at `now` (at least 1: 0 would be refused). */
function remaining(r: usize, now: f64): u32 {
  const t = load<u32>(r + O_TIMEOUT);
  const aged = (clock(now) - load<u32>(r + O_SEEN)) / 1000;
  return t > aged + 1 ? t - aged : 1;
}

// ---- kernel → table ----

/**
 * Handle `len` bytes of ctnetlink messages in NLRX. `queue`: changes are queued for the peer (this
 * node is active). Events carrying our own port id are echoes of our injections and are ignored.
 * Kernel answers to our requests (NLMSG_ERROR) are matched by sequence number and fixed up where
 * the fix is known (EEXIST on create → delete + create; ENOENT on update → create).
 * Returns the number of messages read.
 */
export function handleNetlink(now: f64, len: u32, queue: bool, dump: bool): u32 {
  let p = NLRX;
  const end = NLRX + (len < NLRX_CAP ? len : NLRX_CAP);
  let n: u32 = 0;
  while (p + NLMSG_HDRLEN <= end) {
    const mlen = load<u32>(p);
    if (mlen < NLMSG_HDRLEN || p + mlen > end) { bump(S_MALFORMED); break; }
    const type = load<u16>(p, 4);
    n++; bump(S_NL_MSGS);
    if (type == NLMSG_DONE) doneSeen = true;
    else if (type == NLMSG_ERROR) { if (mlen >= NLMSG_HDRLEN + 4) kernelAnswer(now, load<u32>(p, 8), -load<i32>(p, NLMSG_HDRLEN)); }
    else if (type == CT_NEW || type == CT_DELETE) {
      if (!dump && load<u32>(p, 12) == ownPid && ownPid != 0) bump(S_OWN_ECHO);
      else kernelEntry(now, p, mlen, type == CT_DELETE, queue, dump);
    }
    p += (mlen + 3) & ~3;
  }
  return n;
}

function kernelEntry(now: f64, msg: usize, len: u32, isDelete: bool, queue: bool, dump: bool): void {
  const r = parseCt(msg, len);
  if (r != PARSE_OK) { bump(r == PARSE_FAMILY ? S_UNSUPPORTED : S_MALFORMED); return; }
  if (parsedV6) { kernelEntry6(now, isDelete, queue, dump); return; }
  const proto = load<u8>(ENT + O_PROTO);
  if (proto != IPPROTO_TCP && proto != IPPROTO_UDP && proto != IPPROTO_ICMP) { bump(S_UNSUPPORTED); return; }
  // The node's own traffic stays in its own kernel; the receiver refuses the same (policy.ts), so a peer that
  // counts rx_to_self is not one running this filter.
  const osrc = load<u32>(ENT + O_OSRC); const rsrc = load<u32>(ENT + O_RSRC);
  if (ignored(osrc) || ignored(load<u32>(ENT + O_ODST)) || ignored(rsrc) || isVip(osrc) || isVip(rsrc)) { bump(S_FILTERED); return; }
  if (dump) bump(S_DUMP_ENTRIES); else bump(S_EVENTS);
  const h = keyHash(ENT);
  const i = table.find(ENT, h);
  if (isDelete) { if (i >= 0) removeLocal(<u32>i, queue); return; }
  const present = load<u8>(ENT + O_PRESENT);
  if (i < 0) {
    if (!(present & PRESENT_REPLY)) { bump(S_MALFORMED); return; }
    if (!(present & PRESENT_TIMEOUT)) store<u32>(ENT + O_TIMEOUT, 300);
    store<u32>(ENT + O_SEEN, clock(now));
    const j = table.insert(ENT, h);
    if (j < 0) { bump(S_TABLE_FULL); return; }
    if (queue) table.enqueue(<u32>j);
    return;
  }
  const rec = table.rec(<u32>i);
  // Events carry protoinfo and mark only when they changed: keep what the table knows.
  if (!(present & PRESENT_TCP)) memory.copy(ENT + O_TCPSTATE, rec + O_TCPSTATE, 5);
  if (!(present & PRESENT_MARK)) store<u32>(ENT + O_MARK, load<u32>(rec + O_MARK));
  if (!(present & PRESENT_REPLY)) memory.copy(ENT + 16, rec + 16, 12);
  let changed = load<u8>(rec + O_LIVE) != LIVE_OK || contentDiffers(rec, ENT);
  // Traffic refreshes timeouts without events; the peer's copy only ages. Once it holds less than half of
  // the real remaining time, send the state again (periodic re-dumps find these).
  if (!changed && (present & PRESENT_TIMEOUT) && remaining(rec, now) * 2 < load<u32>(ENT + O_TIMEOUT)) changed = true;
  const oldTimeout = load<u32>(rec + O_TIMEOUT);
  memory.copy(rec + 16, ENT + 16, 29);
  if (!(present & PRESENT_TIMEOUT)) store<u32>(rec + O_TIMEOUT, oldTimeout);
  store<u8>(rec + O_LIVE, LIVE_OK);
  store<u32>(rec + O_SEEN, clock(now));
  store<u32>(rec + O_GEN, table.gen);
  if (changed && queue) table.enqueue(<u32>i);
}

/**
 * kernelEntry for the IPv6 entry in ENT. Not replicated: the node's own traffic (link-local, multicast, its
 * own and the peer's addresses, the IPv6 VIPs) and entries with NAT (IPv6 is routed, not translated).
 */
function kernelEntry6(now: f64, isDelete: bool, queue: bool, dump: bool): void {
  const proto = load<u8>(ENT + O_PROTO);
  if (proto != IPPROTO_TCP && proto != IPPROTO_UDP && proto != IPPROTO_ICMPV6) { bump(S_UNSUPPORTED); return; }
  const h = keyHash(ENT);
  const i = table6.find(ENT, h);
  if (isDelete) { if (i >= 0) { bump(dump ? S_DUMP_ENTRIES : S_EVENTS); removeLocal6(<u32>i, queue); } return; }
  const present = load<u8>(ENT + O_PRESENT);
  const rec = i >= 0 ? table6.rec(<u32>i) : 0;
  if (!(present & PRESENT_REPLY)) {
    if (i < 0) { bump(S_MALFORMED); return; }
    memory.copy(ENT + 16, rec + 16, 12); memory.copy(ENT + O6_RSRC, rec + O6_RSRC, 32);
  }
  if (ownEntry6(ENT)) { bump(S_FILTERED); return; }
  if (!natFree6(ENT)) { bump(S_UNSUPPORTED); return; }
  if (dump) bump(S_DUMP_ENTRIES); else bump(S_EVENTS);
  if (i < 0) {
    if (!(present & PRESENT_TIMEOUT)) store<u32>(ENT + O_TIMEOUT, 300);
    store<u32>(ENT + O_SEEN, clock(now));
    const j = table6.insert(ENT, h);
    if (j < 0) { bump(S_TABLE_FULL); return; }
    if (queue) table6.enqueue(<u32>j);
    return;
  }
  if (!(present & PRESENT_TCP)) memory.copy(ENT + O_TCPSTATE, rec + O_TCPSTATE, 5);
  if (!(present & PRESENT_MARK)) store<u32>(ENT + O_MARK, load<u32>(rec + O_MARK));
  let changed = load<u8>(rec + O_LIVE) != LIVE_OK || contentDiffers6(rec, ENT);
  if (!changed && (present & PRESENT_TIMEOUT) && remaining(rec, now) * 2 < load<u32>(ENT + O_TIMEOUT)) changed = true;
  const oldTimeout = load<u32>(rec + O_TIMEOUT);
  memory.copy(rec + 16, ENT + 16, 29); memory.copy(rec + O6_RSRC, ENT + O6_RSRC, 32);
  if (!(present & PRESENT_TIMEOUT)) store<u32>(rec + O_TIMEOUT, oldTimeout);
  store<u8>(rec + O_LIVE, LIVE_OK);
  store<u32>(rec + O_SEEN, clock(now));
  store<u32>(rec + O_GEN, table6.gen);
  if (changed && queue) table6.enqueue(<u32>i);
}

function removeLocal6(i: u32, queue: bool): void {
  const rec = table6.rec(i);
  const q = load<u8>(rec + O_QFLAGS);
  if (queue) { store<u8>(rec + O_LIVE, LIVE_DEAD); store<u8>(rec + O_QFLAGS, q & ~Q_SILENT); table6.enqueue(i); }
  else if (q & Q_QUEUED) { store<u8>(rec + O_LIVE, LIVE_DEAD); store<u8>(rec + O_QFLAGS, q | Q_SILENT); }
  else table6.free(i);
}

/** The kernel lost entry `i`: tell the peer (active node) or just forget it. */
function removeLocal(i: u32, queue: bool): void {
  const rec = table.rec(i);
  const q = load<u8>(rec + O_QFLAGS);
  if (queue) { store<u8>(rec + O_LIVE, LIVE_DEAD); store<u8>(rec + O_QFLAGS, q & ~Q_SILENT); table.enqueue(i); }
  else if (q & Q_QUEUED) { store<u8>(rec + O_LIVE, LIVE_DEAD); store<u8>(rec + O_QFLAGS, q | Q_SILENT); }
  else table.free(i);
}

function kernelAnswer(now: f64, seq: u32, err: i32): void {
  if (seq == SEQ_BARRIER) { barrierSeen = true; return; }
  if (err == 0) return;
  const i = seq >> 3; const what = seq & 7;
  if (what == K_DELETE || what == K_FIXDEL || what == K_LIBERAL) { if (err != ENOENT) fail(err); return; }
  const k = i & ~V6;
  if ((i & V6) ? (k >= table6.span() || table6.liveOf(k) != LIVE_OK) : (i >= table.span() || table.liveOf(i) != LIVE_OK)) { fail(err); return; }
  const rec = R(i);
  const tries = load<u8>(rec + O_RETRIES);
  if (tries >= 2 || nlTxLen > NLTX_SOFT) { fail(err); return; }
  store<u8>(rec + O_RETRIES, tries + 1);
  if (what == K_CREATE && err == EEXIST) {
    // Something holds the tuple (a packet-made entry, a leftover): replace it with the synced one.
    emitDelete(i, K_FIXDEL); emitCreate(i, now);
    bump(S_K_EEXIST_FIXED);
  } else if (what == K_UPDATE && err == ENOENT) {
    emitCreate(i, now);
    bump(S_K_ENOENT_FIXED);
  } else fail(err);
}

function fail(err: i32): void { bump(S_K_ERRORS); setStat(S_LAST_ERRNO, <u32>err); }

// ---- dump diff ----

/** A full dump starts: entries it reports get the new generation. */
export function dumpBegin(): void { table.gen++; table6.gen++; }
/** The dump ended: entries it did not report are gone from the kernel. Returns how many. */
export function dumpEnd(queue: bool): u32 {
  let n: u32 = 0;
  const g = table.gen;
  for (let i: u32 = 0; i < table.span(); i++) {
    const r = table.rec(i);
    if (load<u8>(r + O_LIVE) == LIVE_OK && load<u32>(r + O_GEN) != g) { removeLocal(i, queue); n++; }
  }
  const g6 = table6.gen;
  for (let i: u32 = 0; i < table6.span(); i++) {
    const r = table6.rec(i);
    if (load<u8>(r + O_LIVE) == LIVE_OK && load<u32>(r + O_GEN) != g6) { removeLocal6(i, queue); n++; }
  }
  for (let k: u32 = 0; k < n; k++) bump(S_SWEPT);
  return n;
}

// ---- table → peer ----

/**
 * Encode queued states into TXB, at most `maxBytes`: IPv4 first, then IPv6 when `v6` (the peer announced
 * CAP_V6). Without it, queued IPv6 states are dropped from the queue (counted `v6_held`; they stay in the
 * table, and a bulk for an upgraded peer carries them). Returns the number of items (0 = queue empty).
 */
export function pollBatch(now: f64, maxBytes: u32, v6: bool): u32 {
  if (maxBytes > TXB_CAP) maxBytes = TXB_CAP;
  let p: u32 = 0; let n: u32 = 0;
  while (p + UPSERT_LEN <= maxBytes) {
    const i = table.dequeue();
    if (i < 0) break;
    const r = table.rec(<u32>i);
    if (load<u8>(r + O_LIVE) == LIVE_DEAD) {
      const silent = (load<u8>(r + O_QFLAGS) & Q_SILENT) != 0;
      if (!silent) { encodeDelete(TXB + p, r); p += DELETE_LEN; n++; bump(S_TX_DELETES); }
      table.free(<u32>i);
      continue;
    }
    encodeUpsert(TXB + p, r, remaining(r, now));
    p += UPSERT_LEN; n++; bump(S_TX_UPSERTS);
  }
  if (!v6) {
    for (let i = table6.dequeue(); i >= 0; i = table6.dequeue()) {
      bump(S_V6_HELD);
      if (load<u8>(table6.rec(<u32>i) + O_LIVE) == LIVE_DEAD) table6.free(<u32>i);
    }
  } else if (table.qLen == 0) {
    while (p + UPSERT6_LEN <= maxBytes) {
      const i = table6.dequeue();
      if (i < 0) break;
      const r = table6.rec(<u32>i);
      if (load<u8>(r + O_LIVE) == LIVE_DEAD) {
        const silent = (load<u8>(r + O_QFLAGS) & Q_SILENT) != 0;
        if (!silent) { encodeDelete6(TXB + p, r); p += DELETE6_LEN; n++; bump(S_TX_DELETES); }
        table6.free(<u32>i);
        continue;
      }
      encodeUpsert6(TXB + p, r, remaining(r, now));
      p += UPSERT6_LEN; n++; bump(S_TX_UPSERTS);
    }
  }
  txLen = p;
  return n;
}

// ---- peer → table + kernel ----

/**
 * Apply the `len` bytes of wire items in PEER: update the table and append the kernel requests that
 * make the local kernel match to NLTX (creates start BE_LIBERAL when `liberal`). Returns the number of
 * items applied; an invalid item stops the walk (the rest of the payload is not trusted).
 */
export function applyItems(now: f64, len: u32, liberal: bool): u32 {
  let p: u32 = 0; let n: u32 = 0;
  const end = len < PEER_CAP ? len : PEER_CAP;
  while (p < end) {
    if (nlTxLen > NLTX_SOFT) break;
    const l = decodeItem(PEER + p, end - p, ENT);
    if (l == 0) { bump(S_RX_BAD_ITEMS); break; }
    const op = load<u8>(PEER + p);
    p += l; n++;
    if (decodedV6) { applyItem6(now, op, liberal); continue; }
    const h = keyHash(ENT);
    const i = table.find(ENT, h);
    if (op != OP_UPSERT) {
      bump(S_RX_DELETES);
      if (i >= 0) { emitDelete(<u32>i, K_DELETE); removeLocal(<u32>i, false); }
      continue;
    }
    bump(S_RX_UPSERTS);
    // Refused items are skipped (the rest of the payload is still good); the record keeps what it had.
    const why = checkUpsert(ENT, ignored(load<u32>(ENT + O_OSRC)) || ignored(load<u32>(ENT + O_ODST)) || ignored(load<u32>(ENT + O_RSRC)));
    if (why != POLICY_OK) { bumpWhy(why); continue; }
    if (clampTimeout(ENT)) bump(S_RX_TIMEOUT_CLAMPED);
    store<u32>(ENT + O_SEEN, clock(now));
    if (i < 0) {
      const j = table.insert(ENT, h);
      if (j < 0) { bump(S_TABLE_FULL); continue; }
      emitCreateL(<u32>j, now, liberal);
      continue;
    }
    const rec = table.rec(<u32>i);
    // NAT cannot change on an existing entry (EOPNOTSUPP): a new binding means delete + create.
    const natChanged = load<u64>(rec + 16) != load<u64>(ENT + 16) || load<u32>(rec + 24) != load<u32>(ENT + 24) || load<u8>(rec + O_LIVE) != LIVE_OK;
    memory.copy(rec + 16, ENT + 16, 29);
    store<u32>(rec + O_SEEN, clock(now));
    store<u32>(rec + O_GEN, table.gen);
    store<u8>(rec + O_RETRIES, 0);
    if (natChanged) {
      store<u8>(rec + O_LIVE, LIVE_OK);
      store<u8>(rec + O_QFLAGS, load<u8>(rec + O_QFLAGS) & ~Q_SILENT);
      emitDelete(<u32>i, K_FIXDEL); emitCreateL(<u32>i, now, liberal);
    } else emitUpdate(<u32>i, now, liberal);
  }
  return n;
}

function bumpWhy(why: u32): void {
  bump(why == POLICY_TO_SELF ? S_RX_TO_SELF : why == POLICY_ZONE ? S_RX_ZONE : why == POLICY_MARK ? S_RX_MARK : why == POLICY_SNAT ? S_RX_SNAT : S_RX_DNAT);
}

/** applyItems for the IPv6 item decoded into ENT. */
function applyItem6(now: f64, op: u8, liberal: bool): void {
  const h = keyHash(ENT);
  const i = table6.find(ENT, h);
  if (op != OP_UPSERT6) {
    bump(S_RX_DELETES);
    if (i >= 0) { emitDelete(<u32>i | V6, K_DELETE); removeLocal6(<u32>i, false); }
    return;
  }
  bump(S_RX_UPSERTS);
  const why = checkUpsert6(ENT);
  if (why != POLICY_OK) { bumpWhy(why); return; }
  if (clampTimeout(ENT)) bump(S_RX_TIMEOUT_CLAMPED);
  store<u32>(ENT + O_SEEN, clock(now));
  if (i < 0) {
    const j = table6.insert(ENT, h);
    if (j < 0) { bump(S_TABLE_FULL); return; }
    emitCreateL(<u32>j | V6, now, liberal);
    return;
  }
  const rec = table6.rec(<u32>i);
  const revive = load<u8>(rec + O_LIVE) != LIVE_OK;
  memory.copy(rec + 16, ENT + 16, 29);
  store<u32>(rec + O_SEEN, clock(now));
  store<u32>(rec + O_GEN, table6.gen);
  store<u8>(rec + O_RETRIES, 0);
  if (revive) {
    store<u8>(rec + O_LIVE, LIVE_OK);
    store<u8>(rec + O_QFLAGS, load<u8>(rec + O_QFLAGS) & ~Q_SILENT);
    emitDelete(<u32>i | V6, K_FIXDEL); emitCreateL(<u32>i | V6, now, liberal);
  } else emitUpdate(<u32>i | V6, now, liberal);
}

// Fix-up creates (kernelAnswer) reuse the liberal setting of the last apply.
let applyLiberal: bool = true;
function emitCreate(i: u32, now: f64): void { emitCreateL(i, now, applyLiberal); }
function emitCreateL(i: u32, now: f64, liberal: bool): void {
  applyLiberal = liberal;
  const r = R(i);
  const at = NLTX + nlTxLen;
  const e = (i & V6) ? buildCreate6(at, r, (i << 3) | K_CREATE, remaining(r, now), liberal) : buildCreate(at, r, (i << 3) | K_CREATE, remaining(r, now), liberal);
  if (e == at) { bump(S_UNSUPPORTED); return; }
  nlTxLen += <u32>(e - at);
  bump(S_K_CREATES);
}
function emitUpdate(i: u32, now: f64, liberal: bool): void {
  const r = R(i);
  const at = NLTX + nlTxLen;
  nlTxLen += <u32>(buildUpdate(at, r, (i << 3) | K_UPDATE, remaining(r, now), liberal, (i & V6) != 0) - at);
  bump(S_K_UPDATES);
}
function emitDelete(i: u32, what: u32): void {
  const at = NLTX + nlTxLen;
  nlTxLen += <u32>(buildDelete(at, R(i), (i << 3) | what, (i & V6) != 0) - at);
  bump(S_K_DELETES);
}

/** Append the barrier request to NLTX. */
export function emitBarrier(): void {
  const at = NLTX + nlTxLen;
  nlTxLen += <u32>(buildBarrier(at) - at);
}

/**
 * Set or clear BE_LIBERAL on TCP entries from record `start` on, until NLTX is half full. Returns the
 * next record to continue from, or -1 when the pass is complete.
 */
export function liberalPass(start: u32, on: bool): i32 {
  const stop = NLTX_CAP / 2;
  // IPv4 records, then the IPv6 ones (tagged V6).
  if (start < V6) {
    for (let i = start; i < table.span(); i++) {
      if (nlTxLen + MAX_REQUEST > stop) return <i32>i;
      const r = table.rec(i);
      if (load<u8>(r + O_LIVE) != LIVE_OK || load<u8>(r + O_PROTO) != IPPROTO_TCP) continue;
      const at = NLTX + nlTxLen;
      nlTxLen += <u32>(buildLiberal(at, r, (i << 3) | K_LIBERAL, on) - at);
    }
    start = V6;
  }
  for (let i = start & ~V6; i < table6.span(); i++) {
    if (nlTxLen + MAX_REQUEST > stop) return <i32>(i | V6);
    const r = table6.rec(i);
    if (load<u8>(r + O_LIVE) != LIVE_OK || load<u8>(r + O_PROTO) != IPPROTO_TCP) continue;
    const at = NLTX + nlTxLen;
    nlTxLen += <u32>(buildLiberal(at, r, ((i | V6) << 3) | K_LIBERAL, on, true) - at);
  }
  return -1;
}

/**
 * Delete and re-create every live TCP state from record `start` on (BE_LIBERAL), until NLTX is half full.
 * For a node that just turned passive: its entries carry window tracking learned while it forwarded, which
 * goes stale as the flows move on through the peer; a liberal entry never re-learns (out-of-window packets
 * are accepted but not tracked), so the next takeover would drop them once strict. A re-created entry starts
 * with empty tracking and picks the flow up afresh. Returns where to continue, or -1 when done.
 */
export function reinjectPass(start: u32, now: f64): i32 {
  const stop = NLTX_CAP / 2;
  if (start < V6) {
    for (let i = start; i < table.span(); i++) {
      if (nlTxLen + 2 * MAX_REQUEST > stop) return <i32>i;
      const r = table.rec(i);
      if (load<u8>(r + O_LIVE) != LIVE_OK || load<u8>(r + O_PROTO) != IPPROTO_TCP) continue;
      store<u8>(r + O_RETRIES, 0);
      emitDelete(i, K_FIXDEL); emitCreateL(i, now, true);
    }
    start = V6;
  }
  for (let i = start & ~V6; i < table6.span(); i++) {
    if (nlTxLen + 2 * MAX_REQUEST > stop) return <i32>(i | V6);
    const r = table6.rec(i);
    if (load<u8>(r + O_LIVE) != LIVE_OK || load<u8>(r + O_PROTO) != IPPROTO_TCP) continue;
    store<u8>(r + O_RETRIES, 0);
    emitDelete(i | V6, K_FIXDEL); emitCreateL(i | V6, now, true);
  }
  return -1;
}

export function resetNlTx(): void { nlTxLen = 0; }

/** Copy record `i` into ENT (tests, status). False if it is not live. */
export function readRecord(i: u32): bool {
  if (i >= table.span() || table.liveOf(i) == 0) return false;
  memory.copy(ENT, table.rec(i), REC);
  return true;
}
/** Copy IPv6 record `i` into ENT. False if it is not live. */
export function readRecord6(i: u32): bool {
  if (i >= table6.span() || table6.liveOf(i) == 0) return false;
  memory.copy(ENT, table6.rec(i), REC6);
  return true;
}
/** Look ENT's IPv6 key up (the host fills the folds too: entry.ts); copies the record into ENT. */
export function lookupEnt6(): i32 {
  const i = table6.find(ENT, keyHash(ENT));
  if (i >= 0) memory.copy(ENT, table6.rec(<u32>i), REC6);
  return i;
}
/** Look ENT's key up; copies the record into ENT. Returns the record number or -1. */
export function lookupEnt(): i32 {
  const i = table.find(ENT, keyHash(ENT));
  if (i >= 0) memory.copy(ENT, table.rec(<u32>i), REC);
  return i;
}
