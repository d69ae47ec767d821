// The state sync datagram (version 2), authenticated with HMAC-SHA256 (node:crypto) truncated to 16
// bytes. Layout and rules: docs/statesync.md "Wire protocol". Pure functions: no sockets, no clock.
import { createHmac, timingSafeEqual } from 'node:crypto';

export const MAGIC = 0xd6;
/** 2: random 64-bit sessions confirmed by a challenge, 64-bit packet numbers (1: clock sessions, 32-bit pn). */
export const VERSION = 2;
export const HEADER_LEN = 44;
export const TAG_LEN = 16;
/** Largest datagram we send: one Ethernet MTU minus IPv4 and UDP headers, so nothing is fragmented. */
export const MAX_DATAGRAM = 1472;
export const MAX_PAYLOAD = MAX_DATAGRAM - HEADER_LEN - TAG_LEN;
/** HELLO payload: challenge nonce u64, echo u64. */
export const HELLO_LEN = 16;
/** Wire item sizes (assembly/statesync/codec.ts). */
export const UPSERT_LEN = 48;
export const DELETE_LEN = 16;
export const UPSERT6_LEN = 96;
export const DELETE6_LEN = 40;
/** Item length by op byte (0 = unknown op). */
const ITEM_LEN = [0, UPSERT_LEN, DELETE_LEN, UPSERT6_LEN, DELETE6_LEN];

export const Type = { DATA: 1, ACK: 2, HELLO: 3 } as const;
/** DATA flags. */
export const F_BULK_START = 0x1;
export const F_BULK_END = 0x2;
/** HELLO flag: send me your whole table. */
export const F_WANT_BULK = 0x1;
/** HELLO flag: I do not know your session yet; echo my nonce to prove it is alive. */
export const F_CHALLENGE = 0x2;
/**
 * HELLO flag: I take IPv6 items (upsert6/delete6). The previous release ignores it, and drops a DATA message
 * with an op it does not know without acknowledging it, so IPv6 items go only to a peer that sent this.
 */
export const F_CAP_V6 = 0x8;
/** ACK flag: a gap was seen, resend everything after `ack` now. */
export const F_NACK = 0x4;

export interface Header {
  type: number; flags: number;
  /** Sender's incarnation: random, never 0; compared only for equality (host/statesync/session.ts). */
  session: bigint;
  /** The receiver's incarnation as the sender knows it (0 = not yet). */
  peerSession: bigint;
  /** Packet number: strictly increasing per session, 64-bit (never wraps in practice). */
  pn: bigint;
  /** DATA: this message's sequence number (32-bit, serial-number arithmetic, RFC 1982). */
  seq: number;
  /** Cumulative acknowledgement: every DATA seq up to `ack` (serially) from the receiver's session arrived in order. */
  ack: number;
  /** Items in the payload. */
  count: number;
  /** BULK_START: states in the bulk. */
  extra: number;
}

export type OpenResult = { ok: true; h: Header; payload: Buffer } | { ok: false; why: 'short' | 'magic' | 'version' | 'length' | 'auth' };

export class Codec {
  constructor(private readonly key: Buffer) {}

  private tag(data: Buffer): Buffer {
    return createHmac('sha256', this.key).update(data).digest().subarray(0, TAG_LEN);
  }

  /** Build one datagram: header + payload + tag. */
  seal(h: Header, payload: Uint8Array): Buffer {
    const b = Buffer.allocUnsafe(HEADER_LEN + payload.length + TAG_LEN);
    b[0] = MAGIC; b[1] = VERSION; b[2] = h.type; b[3] = h.flags;
    b.writeBigUInt64BE(h.session, 4); b.writeBigUInt64BE(h.peerSession, 12); b.writeBigUInt64BE(h.pn, 20);
    b.writeUInt32BE(h.seq >>> 0, 28); b.writeUInt32BE(h.ack >>> 0, 32);
    b.writeUInt16BE(h.count, 36); b.writeUInt16BE(payload.length, 38); b.writeUInt32BE(h.extra >>> 0, 40);
    b.set(payload, HEADER_LEN);
    this.tag(b.subarray(0, HEADER_LEN + payload.length)).copy(b, HEADER_LEN + payload.length);
    return b;
  }

  /** Check and split a received datagram. Nothing in it is trusted before the tag verifies. */
  open(b: Buffer): OpenResult {
    if (b.length < HEADER_LEN + TAG_LEN) return { ok: false, why: 'short' };
    if (b[0] !== MAGIC) return { ok: false, why: 'magic' };
    if (b[1] !== VERSION) return { ok: false, why: 'version' };
    const plen = b.readUInt16BE(38);
    if (b.length > MAX_DATAGRAM || HEADER_LEN + plen + TAG_LEN !== b.length) return { ok: false, why: 'length' };
    const body = b.subarray(0, HEADER_LEN + plen);
    if (!timingSafeEqual(this.tag(body), b.subarray(HEADER_LEN + plen))) return { ok: false, why: 'auth' };
    return {
      ok: true,
      h: {
        type: b[2], flags: b[3],
        session: b.readBigUInt64BE(4), peerSession: b.readBigUInt64BE(12), pn: b.readBigUInt64BE(20),
        seq: b.readUInt32BE(28), ack: b.readUInt32BE(32), count: b.readUInt16BE(36), extra: b.readUInt32BE(40),
      },
      payload: b.subarray(HEADER_LEN, HEADER_LEN + plen),
    };
  }
}

export function helloPayload(nonce: bigint, echo: bigint): Buffer {
  const b = Buffer.alloc(HELLO_LEN);
  b.writeBigUInt64BE(nonce, 0); b.writeBigUInt64BE(echo, 8);
  return b;
}

/**
 * Does an authenticated message's shape match its type? DATA: the payload is exactly `count` whole items (by
 * their op byte: 1 upsert, 2 delete, 3 upsert6, 4 delete6); ACK: empty; HELLO: nonce and echo. A peer whose fields lie is refused
 * before anything in the payload is used (`count`).
 */
export function shapeOk(h: Header, payload: Uint8Array): boolean {
  if (h.type === Type.HELLO) return payload.length === HELLO_LEN && h.count === 0;
  if (h.type === Type.ACK) return payload.length === 0 && h.count === 0;
  if (h.type !== Type.DATA) return false;
  let p = 0; let n = 0;
  while (p < payload.length) {
    const len = ITEM_LEN[payload[p]!] ?? 0;
    if (len === 0 || p + len > payload.length) return false;
    p += len; n++;
  }
  return n === h.count;
}
