// The state sync datagram (version 1), authenticated with HMAC-SHA256 (node:crypto) truncated to 16
// bytes. Layout and rules: docs/statesync.md "Wire protocol". Pure functions: no sockets, no clock.
import { createHmac, timingSafeEqual } from 'node:crypto';

export const MAGIC = 0xd6;
export const VERSION = 1;
export const HEADER_LEN = 40;
export const TAG_LEN = 16;
/** Largest datagram we send: one Ethernet MTU minus IPv4 and UDP headers, so nothing is fragmented. */
export const MAX_DATAGRAM = 1472;
export const MAX_PAYLOAD = MAX_DATAGRAM - HEADER_LEN - TAG_LEN;

export const Type = { DATA: 1, ACK: 2, HELLO: 3 } as const;
/** DATA flags. */
export const F_BULK_START = 0x1;
export const F_BULK_END = 0x2;
/** HELLO flag: send me your whole table. */
export const F_WANT_BULK = 0x1;
/** ACK flag: a gap was seen, resend everything after `ack` now. */
export const F_NACK = 0x4;

export interface Header {
  type: number; flags: number;
  /** Sender's incarnation: its start time in ms; grows across restarts, so older incarnations are replays. */
  session: number;
  /** The receiver's incarnation as the sender last heard it (0 = not yet). */
  peerSession: number;
  /** Packet number: strictly increasing per session (replay window). */
  pn: number;
  /** DATA: this message's sequence number (1, 2, ... per pair of sessions). */
  seq: number;
  /** Cumulative acknowledgement: every DATA seq <= ack from the receiver's session arrived in order. */
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
    b.writeUIntBE(Math.floor(h.session / 2 ** 32), 4, 4); b.writeUInt32BE(h.session >>> 0, 8);
    b.writeUIntBE(Math.floor(h.peerSession / 2 ** 32), 12, 4); b.writeUInt32BE(h.peerSession >>> 0, 16);
    b.writeUInt32BE(h.pn >>> 0, 20); b.writeUInt32BE(h.seq >>> 0, 24); b.writeUInt32BE(h.ack >>> 0, 28);
    b.writeUInt16BE(h.count, 32); b.writeUInt16BE(payload.length, 34); b.writeUInt32BE(h.extra >>> 0, 36);
    b.set(payload, HEADER_LEN);
    this.tag(b.subarray(0, HEADER_LEN + payload.length)).copy(b, HEADER_LEN + payload.length);
    return b;
  }

  /** Check and split a received datagram. Nothing in it is trusted before the tag verifies. */
  open(b: Buffer): OpenResult {
    if (b.length < HEADER_LEN + TAG_LEN) return { ok: false, why: 'short' };
    if (b[0] !== MAGIC) return { ok: false, why: 'magic' };
    if (b[1] !== VERSION) return { ok: false, why: 'version' };
    const plen = b.readUInt16BE(34);
    if (HEADER_LEN + plen + TAG_LEN !== b.length) return { ok: false, why: 'length' };
    const body = b.subarray(0, HEADER_LEN + plen);
    if (!timingSafeEqual(this.tag(body), b.subarray(HEADER_LEN + plen))) return { ok: false, why: 'auth' };
    return {
      ok: true,
      h: {
        type: b[2], flags: b[3],
        session: b.readUInt32BE(4) * 2 ** 32 + b.readUInt32BE(8),
        peerSession: b.readUInt32BE(12) * 2 ** 32 + b.readUInt32BE(16),
        pn: b.readUInt32BE(20), seq: b.readUInt32BE(24), ack: b.readUInt32BE(28),
        count: b.readUInt16BE(32), extra: b.readUInt32BE(36),
      },
      payload: b.subarray(HEADER_LEN, HEADER_LEN + plen),
    };
  }
}
