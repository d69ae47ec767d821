// duogate core: the WebAssembly ABI. Exports only; the protocol lives in the modules below.
//
// Contract (quinn-proto's four verb families, numbers only across the boundary):
// - Buffers: the host writes inputs into fixed regions of linear memory (rxPtr, configPtr) and reads
//   outputs from others (actionPtr, statusPtr, statsPtr). Regions are static: they never move, so
//   views on them stay valid until memory grows (check `view.buffer !== memory.buffer`).
// - handle*(now, ...): input from the network or the clock. `now` is monotonic milliseconds (f64)
//   supplied by the host; it must never go backwards. The core never reads a clock, a socket or a
//   random source: the host seeds randomness with carpSeed().
// - Mutators (carp*): configuration and local commands.
// - poll*: drain outputs. After EVERY handle or mutator call the host drains pollAction() until it
//   returns 0 (ACT_NONE), performing each action in order, then reads pollTimeout() and arms one timer
//   for it (-1 = none) that calls handleTimeout().
import { ACT_NONE, STAT_COUNT } from './carp/constants';
import { CURRENT, RECORD_SIZE, clearQueue, pop } from './carp/actions';
import { STATS, clearStats } from './carp/stats';
import * as carp from './carp/node';
import { buildGarp } from './arp/garp';
import { buildNa } from './nd/na';
import {
  STATUS_VHID, STATUS_LINK, STATUS_STATE, STATUS_ADVBASE, STATUS_ADVSKEW, STATUS_ADVERTISED_SKEW, STATUS_DEMOTE,
  STATUS_MASTER_SRC, STATUS_RX_ACCEPTED, STATUS_TX_ADVERTS, STATUS_TRANSITIONS, STATUS_LAST_CHANGE_AT,
  STATUS_MASTER_HEARD_AT, STATUS_MASTER_SRC6, STATUS_SIZE, CONFIG_KEY, CONFIG_KEY_MAX, CONFIG_VIPS, CONFIG_VIPS6,
  CONFIG_ADDR6, CONFIG_MAC, GARP_LEN, VHID_ERR_ARG,
} from './carp/layout';

// Codes, layouts and counter names as wasm globals: the host reads the ABI from here (assembly/abi.ts).
export * from './abi';

const RX_CAP: u32 = 65536;
const RX = memory.data(RX_CAP, 16);
const CONFIG_CAP: u32 = 4096;
const CONFIG = memory.data(CONFIG_CAP, 16);
const STATUS = memory.data(STATUS_SIZE, 16);

/** Receive buffer (RX_CAP bytes): the host reads a datagram into it, then calls a handle* with its length. */
export function rxPtr(): usize { return RX; }
export function rxCap(): u32 { return RX_CAP; }
/** Scratch region for configuration arguments (key bytes, address lists). */
export function configPtr(): usize { return CONFIG; }
/** The action record filled by pollAction() (ACTION_SIZE bytes, layout ACTION_* in assembly/abi.ts). */
export function actionPtr(): usize { return CURRENT; }
export function actionSize(): u32 { return RECORD_SIZE; }
/** Counters, STAT_COUNT u32 words (indexes CARP_STAT_* in assembly/abi.ts). */
export function statsPtr(): usize { return STATS; }
export function statsCount(): u32 { return STAT_COUNT; }
export function statusPtr(): usize { return STATUS; }

// ---- CARP mutators ----

/** Forget every vhid, counter and queued action. */
export function carpReset(): void { carp.resetNode(); clearQueue(); clearStats(); }
/** Seed the advert counter generator (host entropy). */
export function carpSeed(hi: u32, lo: u32): void { carp.seedRandom(hi, lo); }
export function carpSetPreempt(on: bool): void { carp.node.preempt = on; }
/** The node's own IPv4 address on `link` (host order): the source of its adverts, used to spot loops. */
export function carpSetLinkAddr(link: u32, addr: u32): void { if (link < carp.MAX_LINKS) carp.node.linkAddrs[link] = addr; }
/** The node's IPv6 link-local address on `link`, 16 bytes at CONFIG_ADDR6: the source of its IPv6 adverts. */
export function carpSetLinkAddr6(link: u32): void {
  if (link < carp.MAX_LINKS) memory.copy(carp.node.linkAddr6(link), CONFIG + CONFIG_ADDR6, 16);
}
/**
 * Add a vhid. CONFIG holds the key at CONFIG_KEY (keyLen bytes), `vipCount` IPv4 addresses as host-order u32
 * words at CONFIG_VIPS and `vip6Count` IPv6 addresses (16 bytes each) at CONFIG_VIPS6. Returns the vhid's slot
 * (>= 0) or a negative VHID_ERR_* (carp/layout.ts).
 */
export function carpAddVhid(vhid: u32, link: u32, advbase: u32, advskew: u32, keyLen: u32, vipCount: u32, vip6Count: u32): i32 {
  if (vhid > 255 || advbase > 255 || advskew > 255 || keyLen > CONFIG_KEY_MAX) return VHID_ERR_ARG;
  return carp.addVhid(<u8>vhid, link, <u8>advbase, <u8>advskew, CONFIG + CONFIG_KEY, keyLen, CONFIG + CONFIG_VIPS, vipCount,
    CONFIG + CONFIG_VIPS6, vip6Count);
}
/** Replace a vhid's VIPs in place (`vipCount` addresses at CONFIG_VIPS, as for carpAddVhid): slot or VHID_ERR_*. */
export function carpSetVips(vhid: u32, link: u32, vipCount: u32): i32 {
  if (vhid > 255) return VHID_ERR_ARG;
  return carp.setVips(<u8>vhid, link, CONFIG + CONFIG_VIPS, vipCount);
}
/**
 * Pair authentication for the vhid in `slot` (docs/security.md): CONFIG holds the trailer key at CONFIG_KEY
 * (keyLen 0 = plain CARP); `peerAddr` (host order, 0 = none) and, with `peer6`, the IPv6 address at CONFIG_ADDR6
 * are the only sources accepted on its link (each for its family).
 */
export function carpSetPair(slot: i32, peerAddr: u32, keyLen: u32, peer6: bool): bool {
  if (keyLen > CONFIG_KEY_MAX) return false;
  return carp.setPair(slot, peerAddr, CONFIG + CONFIG_KEY, keyLen, peer6 ? CONFIG + CONFIG_ADDR6 : 0);
}
/** Paired counters start at epoch << 32; the host keeps the epoch growing across restarts. */
export function carpSetEpoch(epoch: u32): void { carp.node.epoch = epoch; }
/** Remove a vhid; a MASTER releases its VIPs and bows out first. Returns false if it is not on `link`. */
export function carpRemoveVhid(now: f64, vhid: u32, link: u32): bool { return vhid <= 255 && carp.removeVhid(now, <u8>vhid, link); }
/** Start (again after adding vhids to a running node: only vhids still in INIT with carrier go to BACKUP). */
export function carpStart(now: f64): void { carp.start(now); }
export function carpShutdown(now: f64): void { carp.shutdown(now); }
/** Carrier on `link` changed. */
export function carpSetLink(now: f64, link: u32, up: bool): void { carp.setLink(now, link, up); }
/** Set the demotion reasons (bit mask of DEMOTE_*) other than LINK_DOWN, which the core derives itself, plus an extra amount. */
export function carpSetDemotion(now: f64, mask: u32, extra: u32): void {
  const linkBit: u32 = 1;
  carp.node.setDemotion(now, (mask & ~linkBit) | (carp.node.demoteMask & linkBit), extra);
}
export function carpDemotion(): u32 { return carp.node.demotion(); }
/** The dedicated sync link to the peer lost (true) or regained (false) carrier. */
export function carpSetPeerLost(now: f64, lost: bool): void { carp.setPeerLost(now, lost); }

// ---- CARP input ----

/**
 * The IPv4 datagram in RX (`len` bytes, header included) arrived on `link`, or an IPv6 one behind the 40-byte
 * header the host writes from the raw socket's address data (carp/node.ts handleCarp). Returns 0 or the drop reason.
 */
export function handleCarp(now: f64, link: u32, len: u32): u32 {
  return carp.handleCarp(now, link, RX, len > RX_CAP ? RX_CAP : len);
}
export function handleTimeout(now: f64): void { carp.handleTimeout(now); }

// ---- output ----

export function pollAction(): u32 {
  const t = pop();
  return t;
}
/** Earliest deadline (ms) the host must call handleTimeout() at, or -1. */
export function pollTimeout(): f64 { return carp.nextTimeout(); }

// ---- status ----

export function carpVhidCount(): i32 { return carp.node.vhids.length; }
/** Fill STATUS with slot `i`'s status (layout STATUS_* in carp/layout.ts); false if there is no such slot. */
export function carpStatus(i: i32): bool {
  if (i < 0 || i >= carp.node.vhids.length) return false;
  const v = carp.node.vhids[i];
  const s = STATUS;
  store<u32>(s + STATUS_VHID, v.vhid); store<u32>(s + STATUS_LINK, v.link); store<u32>(s + STATUS_STATE, v.state);
  store<u32>(s + STATUS_ADVBASE, v.advbase); store<u32>(s + STATUS_ADVSKEW, v.advskew);
  store<u32>(s + STATUS_ADVERTISED_SKEW, v.advertisedSkew()); store<u32>(s + STATUS_DEMOTE, v.demoteByte());
  store<u32>(s + STATUS_MASTER_SRC, v.masterSrc); store<u32>(s + STATUS_RX_ACCEPTED, v.rxAccepted);
  store<u32>(s + STATUS_TX_ADVERTS, v.txAdverts); store<u32>(s + STATUS_TRANSITIONS, v.transitions);
  store<f64>(s + STATUS_LAST_CHANGE_AT, v.lastChangeAt); store<f64>(s + STATUS_MASTER_HEARD_AT, v.masterHeardAt);
  memory.copy(s + STATUS_MASTER_SRC6, changetype<usize>(v.masterSrc6), 16);
  return true;
}

// ---- ARP codec ----

/** Build a GARP_LEN-byte gratuitous ARP request in RX's tail for `ip` (host order) from the 6-byte MAC at CONFIG_MAC. Returns its address. */
export function arpBuildGarp(ip: u32): usize {
  const out = RX + RX_CAP - 64;
  buildGarp(out, CONFIG + CONFIG_MAC, ip);
  return out;
}

/**
 * Build an unsolicited neighbour advertisement (nd/na.ts: IPv6 header included, NA_LEN bytes) in RX's tail for
 * the IPv6 VIP at CONFIG_ADDR6 from the 6-byte MAC at CONFIG_MAC. Returns its address.
 */
export function ndBuildNa(): usize {
  const out = RX + RX_CAP - 64 - 128;
  buildNa(out, CONFIG + CONFIG_ADDR6, CONFIG + CONFIG_MAC);
  return out;
}


// =====================================================================================================
// ---- State sync (conntrack replication; assembly/conntrack, assembly/statesync) ----
// A separate instance of the module is used by host/statesync (its own linear memory): the CARP exports
// above are untouched by it. Buffers: NLRX (ctnetlink bytes in), NLTX (ctnetlink requests out, length
// ssNlTxLen), PEER (a peer payload in), TXB (a batch of wire items out, length ssTxLen), IGN (ignore
// list, raw IPv4 words), ENT (one 64-byte record, layout in conntrack/entry.ts). Counters: SSTATS.
import * as sst from './statesync/table';
import * as sst6 from './statesync/table6';
import * as sse from './statesync/engine';
import * as ssp from './statesync/policy';
import { SSTATS, S_COUNT, clearSStats } from './statesync/stats';
import { ENT, REC } from './conntrack/entry';

/**
 * Size the IPv4 table for `capacity` states and the IPv6 table for a quarter of that (each rounded up to a power
 * of two, >= 1024). False if already sized differently.
 */
export function ssInit(capacity: u32): bool { clearSStats(); return sst.init(capacity) && sst6.init(capacity / 4); }
/** Forget every state and queued item (peer restart handling, tests). */
export function ssClear(): void { sst.clear(); sst6.clear(); }
export function ssNlRxPtr(): usize { return sse.NLRX; }
export function ssNlRxCap(): u32 { return sse.NLRX_CAP; }
export function ssNlTxPtr(): usize { return sse.NLTX; }
export function ssNlTxLen(): u32 { return sse.nlTxLen; }
export function ssNlTxReset(): void { sse.resetNlTx(); }
export function ssPeerPtr(): usize { return sse.PEER; }
export function ssPeerCap(): u32 { return sse.PEER_CAP; }
export function ssTxPtr(): usize { return sse.TXB; }
export function ssTxLen(): u32 { return sse.txLen; }
export function ssIgnPtr(): usize { return sse.IGN; }
export function ssEntPtr(): usize { return ENT; }
export function ssRecSize(): u32 { return REC; }
export function ssStatsPtr(): usize { return SSTATS; }
export function ssStatsCount(): u32 { return S_COUNT; }
/** Our injecting socket's netlink port id: events carrying it are echoes and are ignored. */
export function ssSetOwnPid(pid: u32): void { sse.setOwnPid(pid); }
/** Ignore entries whose original src/dst is one of the `n` addresses in IGN or inside subnet/mask (raw words). */
export function ssSetIgnore(n: u32, subnet: u32, mask: u32): void { sse.setIgnore(n, subnet, mask); }
/** The policy block for received states (layout in statesync/policy.ts), filled by the host. */
export function ssPolicyPtr(): usize { return ssp.POL; }
/** Turn the received-state policy on with the number of entries of each list in the block. */
export function ssSetPolicy(zones: u32, marks: u32, snat: u32, vips: u32, nets: u32): void { ssp.setPolicy(zones, marks, snat, vips, nets); }
/** ctnetlink bytes in NLRX (`len`). queue: this node is active (changes go to the peer); dump: replies to our dump. */
export function ssHandleNetlink(now: f64, len: u32, queue: bool, dump: bool): u32 { return sse.handleNetlink(now, len, queue, dump); }
/** SYNC_FLAG_DONE: a dump's NLMSG_DONE was read; SYNC_FLAG_BARRIER: the barrier was answered. Cleared by ssResetFlags. */
export function ssFlags(): u32 { return (sse.doneSeen ? sse.FLAG_DONE : 0) | (sse.barrierSeen ? sse.FLAG_BARRIER : 0); }
export function ssResetFlags(): void { sse.resetFlags(); }
export function ssDumpBegin(): void { sse.dumpBegin(); }
export function ssDumpEnd(queue: bool): u32 { return sse.dumpEnd(queue); }
/** Encode queued states into TXB (at most maxBytes; IPv6 ones only when `v6`). Returns the item count; 0 = nothing queued. */
export function ssPollBatch(now: f64, maxBytes: u32, v6: bool): u32 { return sse.pollBatch(now, maxBytes, v6); }
/** Queue every live state (bulk send). Returns how many. */
export function ssQueueAll(): u32 { return sst.queueAll() + sst6.queueAll(); }
/** Drop the send queue (the peer restarted; it will ask for a bulk). */
export function ssDropQueue(): void { sst.dropQueue(); sst6.dropQueue(); }
export function ssQueueLen(): u32 { return sst.qLen + sst6.qLen; }
/** Apply `len` bytes of wire items in PEER; kernel requests go to NLTX. Returns items applied. */
export function ssApply(now: f64, len: u32, liberal: bool): u32 { return sse.applyItems(now, len, liberal); }
export function ssBarrier(): void { sse.emitBarrier(); }
/** BE_LIBERAL on/off for TCP states from record `start` (IPv4, then IPv6 tagged 1 << 24); returns where to continue or -1 when done. */
export function ssLiberalPass(start: u32, on: bool): i32 { return sse.liberalPass(start, on); }
/** Delete + re-create (liberal, empty window tracking) every TCP state from record `start`; -1 when done. */
export function ssReinjectPass(start: u32, now: f64): i32 { return sse.reinjectPass(start, now); }
export function ssCount(): u32 { return sst.count + sst6.count; }
export function ssCount6(): u32 { return sst6.count; }
export function ssCapacity(): u32 { return sst.cap + sst6.cap; }
export function ssSpan(): u32 { return sst.span(); }
export function ssSpan6(): u32 { return sst6.span(); }
export function ssBytesPerSlot(): u32 { return sst.bytesPerSlot(); }
/** Copy record `i` into ENT; false if it is free. */
export function ssReadRecord(i: u32): bool { return sse.readRecord(i); }
/** Look up the key in ENT (bytes 1..15); the record is copied into ENT. Returns its number or -1. */
export function ssLookup(): i32 { return sse.lookupEnt(); }
/** Copy IPv6 record `i` into ENT (128 bytes); false if it is free. */
export function ssReadRecord6(i: u32): bool { return sse.readRecord6(i); }
/** Look up the IPv6 key in ENT (bytes 1..15 with the address folds, and 64..95); copied into ENT. */
export function ssLookup6(): i32 { return sse.lookupEnt6(); }
/** The pair's own IPv6 addresses (16 bytes each, at most POL_OWN6_MAX): never sent, refused when received. */
export function ssOwn6Ptr(): usize { return ssp.OWN6; }
export function ssSetOwn6(n: u32): void { ssp.setOwn6(n); }
