// DHCPv4 messages (RFC 2131 §2, options RFC 2132) as bytes and back. Pure and bounds-checked: `decode` reads
// hostile bytes from the WAN, so every read is checked against the length and a malformed message comes back
// as a reason (the client machine counts it), never as an exception. `encode` writes any message, so the
// virtual-time tests' server model speaks the same wire format the client does.
//
// Fixed header (RFC 2131 figure 1), byte offsets:
//   0 op, 1 htype, 2 hlen, 3 hops, 4 xid(4), 8 secs(2), 10 flags(2), 12 ciaddr, 16 yiaddr, 20 siaddr, 24 giaddr,
//   28 chaddr(16), 44 sname(64), 108 file(128), 236 magic cookie 99.130.83.99, 240 options.

export const OP_REQUEST = 1;
export const OP_REPLY = 2;
export const HTYPE_ETHERNET = 1;
export const MAGIC_COOKIE = 0x63825363;
export const HEADER_LEN = 236;
export const OPTIONS_AT = 240;
/** Clients pad to the BOOTP size (RFC 1542 §2.1): some relays and servers drop shorter requests. */
export const BOOTP_MIN_LEN = 300;
/** The broadcast bit of `flags` (RFC 2131 §2: the server answers to 255.255.255.255). */
export const FLAG_BROADCAST = 0x8000;

/** Option 53 values (RFC 2132 §9.6). */
export const MsgType = { DISCOVER: 1, OFFER: 2, REQUEST: 3, DECLINE: 4, ACK: 5, NAK: 6, RELEASE: 7, INFORM: 8 } as const;
export const MSG_NAMES = ['', 'discover', 'offer', 'request', 'decline', 'ack', 'nak', 'release', 'inform'] as const;

/** Option codes this client reads or writes (RFC 2132). */
export const Opt = {
  PAD: 0, SUBNET_MASK: 1, ROUTER: 3, DNS: 6, HOSTNAME: 12, REQUESTED_IP: 50, LEASE_TIME: 51, OVERLOAD: 52,
  MSG_TYPE: 53, SERVER_ID: 54, PARAM_REQUEST: 55, MESSAGE: 56, RENEWAL_T1: 58, REBINDING_T2: 59, CLIENT_ID: 61, END: 255,
} as const;

/** Why `decode` refused a message; the machine keeps a counter per reason. */
export const DECODE_REASONS = ['short', 'cookie', 'hlen', 'truncated', 'no_end', 'option_length', 'no_msg_type', 'msg_type'] as const;
export type DecodeReason = typeof DECODE_REASONS[number];

/** A DHCP message. Addresses are dotted quads; absent options are undefined. */
export interface DhcpMessage {
  op: number;
  htype: number;
  /** Client hardware address: `hlen` bytes (6 for Ethernet). */
  chaddr: Buffer;
  hops?: number;
  xid: number;
  secs?: number;
  flags?: number;
  ciaddr?: string;
  yiaddr?: string;
  siaddr?: string;
  giaddr?: string;
  /** Option 53. */
  type: number;
  clientId?: Buffer;
  requestedIp?: string;
  serverId?: string;
  /** Seconds; 0xffffffff is an infinite lease (RFC 2132 §9.2). */
  leaseTime?: number;
  t1?: number;
  t2?: number;
  subnetMask?: string;
  routers?: string[];
  dns?: string[];
  hostname?: string;
  paramRequest?: number[];
  /** Option 56: the server's text, e.g. why it NAKed. */
  message?: string;
  /** Options this codec does not interpret, by code (decode only keeps them for logs and tests). */
  other?: Map<number, Buffer>;
}

export type Decoded = { ok: true; msg: DhcpMessage } | { ok: false; why: DecodeReason };

const ipAt = (b: Buffer, at: number): string => `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;

/** A dotted quad as 4 bytes; throws on anything else (encode's input is the program's own, not the wire's). */
export function ipBytes(ip: string): Buffer {
  const p = ip.split('.');
  const n = p.map(Number);
  if (p.length !== 4 || n.some((x, i) => !/^\d{1,3}$/.test(p[i]) || x > 255)) throw new TypeError(`DHCP_ERR_ADDRESS: "${ip}" is not an IPv4 address`);
  return Buffer.from(n);
}

/** "00:00:5e:00:01:02" → 6 bytes; throws on anything else. */
export function macBytes(mac: string): Buffer {
  if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(mac)) throw new TypeError(`DHCP_ERR_MAC: "${mac}" is not a MAC address (six hex pairs joined by ':')`);
  return Buffer.from(mac.split(':').map((h) => parseInt(h, 16)));
}

/**
 * Walk one options field (`b[from, to)`), appending each option's data under its code. Repeated codes are
 * concatenated (RFC 3396: a long option split in parts). Returns whether an END option was met.
 */
function walk(b: Buffer, from: number, to: number, into: Map<number, Buffer[]>): { end: boolean } | DecodeReason {
  let i = from;
  while (i < to) {
    const code = b[i];
    if (code === Opt.PAD) { i++; continue; }
    if (code === Opt.END) return { end: true };
    if (i + 1 >= to) return 'truncated';
    const len = b[i + 1];
    if (i + 2 + len > to) return 'truncated';
    const parts = into.get(code);
    const data = b.subarray(i + 2, i + 2 + len);
    if (parts) parts.push(data); else into.set(code, [data]);
    i += 2 + len;
  }
  return { end: false };
}

/** Decode a UDP payload from port 67. Never throws. */
export function decode(b: Buffer): Decoded {
  if (b.length < OPTIONS_AT) return { ok: false, why: 'short' };
  if (b.readUInt32BE(236) !== MAGIC_COOKIE) return { ok: false, why: 'cookie' };
  const hlen = b[2];
  if (hlen > 16) return { ok: false, why: 'hlen' };
  const opts = new Map<number, Buffer[]>();
  const main = walk(b, OPTIONS_AT, b.length, opts);
  if (typeof main === 'string') return { ok: false, why: main };
  if (!main.end) return { ok: false, why: 'no_end' };
  // Option overload (RFC 2132 §9.3): the file (1), sname (2) or both (3) fields carry more options, read after
  // the main field's, file first.
  const ov = opts.get(Opt.OVERLOAD);
  if (ov) {
    if (ov.length !== 1 || ov[0].length !== 1 || ov[0][0] < 1 || ov[0][0] > 3) return { ok: false, why: 'option_length' };
    const v = ov[0][0];
    for (const [bit, at, len] of [[1, 108, 128], [2, 44, 64]] as const) {
      if (!(v & bit)) continue;
      const r = walk(b, at, at + len, opts);
      if (typeof r === 'string') return { ok: false, why: r };
      if (!r.end) return { ok: false, why: 'no_end' };
    }
  }
  const one = (code: number): Buffer | undefined => {
    const p = opts.get(code);
    return p ? (p.length === 1 ? p[0] : Buffer.concat(p)) : undefined;
  };
  const fixed = (code: number, len: number): Buffer | undefined | null => {
    const v = one(code);
    return v === undefined ? undefined : v.length === len ? v : null;
  };
  const t = fixed(Opt.MSG_TYPE, 1);
  if (t === undefined) return { ok: false, why: 'no_msg_type' };
  if (t === null) return { ok: false, why: 'option_length' };
  if (t[0] < 1 || t[0] > 8) return { ok: false, why: 'msg_type' };

  const msg: DhcpMessage = {
    op: b[0], htype: b[1], hops: b[3], chaddr: Buffer.from(b.subarray(28, 28 + hlen)), xid: b.readUInt32BE(4),
    secs: b.readUInt16BE(8), flags: b.readUInt16BE(10),
    ciaddr: ipAt(b, 12), yiaddr: ipAt(b, 16), siaddr: ipAt(b, 20), giaddr: ipAt(b, 24), type: t[0],
  };
  for (const [code, key] of [[Opt.REQUESTED_IP, 'requestedIp'], [Opt.SERVER_ID, 'serverId'], [Opt.SUBNET_MASK, 'subnetMask']] as const) {
    const v = fixed(code, 4);
    if (v === null) return { ok: false, why: 'option_length' };
    if (v) msg[key] = ipAt(v, 0);
  }
  for (const [code, key] of [[Opt.LEASE_TIME, 'leaseTime'], [Opt.RENEWAL_T1, 't1'], [Opt.REBINDING_T2, 't2']] as const) {
    const v = fixed(code, 4);
    if (v === null) return { ok: false, why: 'option_length' };
    if (v) msg[key] = v.readUInt32BE(0);
  }
  for (const [code, key] of [[Opt.ROUTER, 'routers'], [Opt.DNS, 'dns']] as const) {
    const v = one(code);
    if (v === undefined) continue;
    if (v.length === 0 || v.length % 4 !== 0) return { ok: false, why: 'option_length' };
    const list: string[] = [];
    for (let i = 0; i < v.length; i += 4) list.push(ipAt(v, i));
    msg[key] = list;
  }
  const cid = one(Opt.CLIENT_ID);
  if (cid !== undefined) {
    if (cid.length < 2) return { ok: false, why: 'option_length' };
    msg.clientId = Buffer.from(cid);
  }
  const prl = one(Opt.PARAM_REQUEST);
  if (prl !== undefined) msg.paramRequest = [...prl];
  const host = one(Opt.HOSTNAME);
  if (host !== undefined) msg.hostname = host.toString('latin1');
  const text = one(Opt.MESSAGE);
  if (text !== undefined) msg.message = text.toString('latin1');
  const known = new Set<number>(Object.values(Opt));
  for (const code of opts.keys()) {
    if (known.has(code)) continue;
    (msg.other ??= new Map()).set(code, Buffer.from(one(code)!));
  }
  return { ok: true, msg };
}

/** Append option `code` with `data`, split in 255-byte parts (RFC 3396). */
function put(out: number[], code: number, data: Buffer | number[]): void {
  const d = [...data];
  let i = 0;
  do {
    const part = d.slice(i, i + 255);
    out.push(code, part.length, ...part);
    i += 255;
  } while (i < d.length);
}

const u32 = (v: number): number[] => [(v >>> 24) & 255, (v >>> 16) & 255, (v >>> 8) & 255, v & 255];

/**
 * The message as a UDP payload: header, cookie, options in the order RFC 2131's tables list them (53, 61, 50,
 * 54, lease times, mask, routers, DNS, 12, 55, 56), END, then zeros up to `minLen` (BOOTP_MIN_LEN by default).
 * Throws on a caller error (an address that is not one, a chaddr over 16 bytes): never on wire input.
 */
export function encode(m: DhcpMessage, minLen = BOOTP_MIN_LEN): Buffer {
  if (m.chaddr.length > 16) throw new RangeError(`DHCP_ERR_CHADDR: chaddr is ${m.chaddr.length} bytes; the field holds 16`);
  const o: number[] = [];
  put(o, Opt.MSG_TYPE, [m.type]);
  if (m.clientId) put(o, Opt.CLIENT_ID, m.clientId);
  if (m.requestedIp) put(o, Opt.REQUESTED_IP, ipBytes(m.requestedIp));
  if (m.serverId) put(o, Opt.SERVER_ID, ipBytes(m.serverId));
  if (m.leaseTime !== undefined) put(o, Opt.LEASE_TIME, u32(m.leaseTime));
  if (m.t1 !== undefined) put(o, Opt.RENEWAL_T1, u32(m.t1));
  if (m.t2 !== undefined) put(o, Opt.REBINDING_T2, u32(m.t2));
  if (m.subnetMask) put(o, Opt.SUBNET_MASK, ipBytes(m.subnetMask));
  if (m.routers?.length) put(o, Opt.ROUTER, Buffer.concat(m.routers.map(ipBytes)));
  if (m.dns?.length) put(o, Opt.DNS, Buffer.concat(m.dns.map(ipBytes)));
  if (m.hostname) put(o, Opt.HOSTNAME, Buffer.from(m.hostname, 'latin1'));
  if (m.paramRequest?.length) put(o, Opt.PARAM_REQUEST, m.paramRequest);
  if (m.message) put(o, Opt.MESSAGE, Buffer.from(m.message, 'latin1'));
  for (const [code, data] of m.other ?? []) put(o, code, data);
  o.push(Opt.END);
  const b = Buffer.alloc(Math.max(minLen, OPTIONS_AT + o.length));
  b[0] = m.op; b[1] = m.htype; b[2] = m.chaddr.length; b[3] = m.hops ?? 0;
  b.writeUInt32BE(m.xid >>> 0, 4);
  b.writeUInt16BE(m.secs ?? 0, 8);
  b.writeUInt16BE(m.flags ?? 0, 10);
  ipBytes(m.ciaddr ?? '0.0.0.0').copy(b, 12);
  ipBytes(m.yiaddr ?? '0.0.0.0').copy(b, 16);
  ipBytes(m.siaddr ?? '0.0.0.0').copy(b, 20);
  ipBytes(m.giaddr ?? '0.0.0.0').copy(b, 24);
  m.chaddr.copy(b, 28);
  b.writeUInt32BE(MAGIC_COOKIE, 236);
  Buffer.from(o).copy(b, OPTIONS_AT);
  return b;
}
