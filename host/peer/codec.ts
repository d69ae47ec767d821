// Wire format of the peer heartbeat: "DGHB" | version 1 | JSON body | HMAC-SHA256(key, everything before).
// JSON keeps it readable in a capture (tshark shows the body); the HMAC makes it unforgeable. Replays are
// refused by the receiver (boot id + sequence, see PeerHealth). Decoding never throws: it returns a drop reason.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { MAX_LIST } from '../wan/dhcp/machine.js';

const MAGIC = Buffer.from('DGHB');
const VERSION = 1;
const TAG = 32;
/** Anything larger is not ours (64 VIPs fit in well under 4 KiB). */
export const MAX_DATAGRAM = 8192;

export type CarpState = 'INIT' | 'BACKUP' | 'MASTER';
export type Path = 'sync' | 'lan';

/** What one node tells the other about itself. */
export interface Heartbeat {
  /** Sender's node.name. */
  node: string;
  /** Random per daemon start: a new boot id restarts the sequence. */
  boot: string;
  /** Increases by one per datagram within a boot. */
  seq: number;
  /** Sender's wall clock, epoch ms (for the human reading status, and the replay window of a new boot id). */
  at: number;
  /** The path it was sent on (the receiver also checks the source address). */
  path: Path;
  /** Sender's CARP state per vhid. */
  vips: { vhid: number; state: CarpState; demote: number }[];
  maintenance: boolean;
  /** Sender's active alarm names, so each side can show what the other one sees. */
  alarms: string[];
  /**
   * The WAN lease the sender holds as MASTER (docs/wan.md), its age instead of a clock reading; `lease: null`
   * once it was lost. Absent when the sender holds none to give.
   */
  wan?: { vhid: number; lease: WireLease | null };
}

/** A DHCP lease on the wire: host/wan/dhcp/machine.ts's Lease with `age_ms` for `obtainedAt`. */
export interface WireLease {
  address: string; subnetMask?: string; routers: string[]; dns: string[]; serverId: string;
  leaseTime: number; t1: number; t2: number; clientId: string; age_ms: number;
}

export type DropReason = 'short' | 'bad_magic' | 'bad_version' | 'bad_hmac' | 'malformed';

export function encode(hb: Heartbeat, key: string): Buffer {
  const head = Buffer.concat([MAGIC, Buffer.from([VERSION]), Buffer.from(JSON.stringify(hb), 'utf8')]);
  return Buffer.concat([head, createHmac('sha256', key).update(head).digest()]);
}

export function decode(buf: Buffer, key: string): { ok: true; hb: Heartbeat } | { ok: false; reason: DropReason } {
  if (buf.length < MAGIC.length + 1 + 2 + TAG || buf.length > MAX_DATAGRAM) return { ok: false, reason: 'short' };
  if (!buf.subarray(0, 4).equals(MAGIC)) return { ok: false, reason: 'bad_magic' };
  if (buf[4] !== VERSION) return { ok: false, reason: 'bad_version' };
  const head = buf.subarray(0, buf.length - TAG);
  const want = createHmac('sha256', key).update(head).digest();
  if (!timingSafeEqual(want, buf.subarray(buf.length - TAG))) return { ok: false, reason: 'bad_hmac' };
  let hb: any;
  try { hb = JSON.parse(head.subarray(5).toString('utf8')); } catch { return { ok: false, reason: 'malformed' }; }
  return valid(hb) ? { ok: true, hb } : { ok: false, reason: 'malformed' };
}

const STATES = new Set(['INIT', 'BACKUP', 'MASTER']);
function valid(h: any): h is Heartbeat {
  return typeof h === 'object' && h !== null && typeof h.node === 'string' && typeof h.boot === 'string'
    && Number.isSafeInteger(h.seq) && typeof h.at === 'number' && (h.path === 'sync' || h.path === 'lan')
    && typeof h.maintenance === 'boolean' && Array.isArray(h.alarms) && h.alarms.every((a: unknown) => typeof a === 'string')
    && Array.isArray(h.vips) && h.vips.length <= 255
    && h.vips.every((v: any) => Number.isInteger(v?.vhid) && STATES.has(v.state) && Number.isInteger(v.demote))
    && (h.wan === undefined || validWan(h.wan));
}

const ipv4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const isIp = (s: unknown) => typeof s === 'string' && ipv4.test(s) && s.split('.').every((o) => Number(o) <= 255);
const isU32 = (n: unknown) => Number.isInteger(n) && (n as number) >= 0 && (n as number) <= 0xffffffff;
function validWan(w: any): boolean {
  if (typeof w !== 'object' || w === null || !Number.isInteger(w.vhid)) return false;
  const l = w.lease;
  if (l === null) return true;
  return typeof l === 'object' && isIp(l.address) && (l.subnetMask === undefined || isIp(l.subnetMask))
    && Array.isArray(l.routers) && l.routers.length <= MAX_LIST && l.routers.every(isIp)
    && Array.isArray(l.dns) && l.dns.length <= MAX_LIST && l.dns.every(isIp) && isIp(l.serverId)
    && isU32(l.leaseTime) && isU32(l.t1) && isU32(l.t2) && typeof l.clientId === 'string' && /^[0-9a-f]{0,512}$/.test(l.clientId)
    && typeof l.age_ms === 'number' && Number.isFinite(l.age_ms) && l.age_ms >= 0;
}
