// Address arithmetic for validation and checks (IPv4), and IPv6 text to bytes.
export function ipNum(ip: string): number {
  const p = ip.split('.').map(Number);
  return ((p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]) >>> 0;
}
export function numIp(n: number): string { return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.'); }
export function parseCidr(c: string): { ip: string; prefix: number; net: number; mask: number } {
  const [ip, p] = c.split('/');
  const prefix = Number(p);
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return { ip, prefix, mask, net: (ipNum(ip) & mask) >>> 0 };
}
export function inSubnet(ip: string, cidr: string): boolean {
  const c = parseCidr(cidr);
  return ((ipNum(ip) & c.mask) >>> 0) === c.net;
}
/** True for the network or broadcast address of a subnet shorter than /31. */
export function isNetOrBroadcast(ip: string, cidr: string): boolean {
  const c = parseCidr(cidr);
  if (c.prefix >= 31) return false;
  const n = ipNum(ip);
  return n === c.net || n === ((c.net | ~c.mask) >>> 0);
}

/** The 16 bytes of an IPv6 address already known to be valid text (node:net isIPv6), no zone or prefix. */
export function ip6Bytes(ip: string): Uint8Array {
  let s = ip;
  const out = new Uint8Array(16);
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4) { const n = ipNum(v4[1]); s = `${s.slice(0, v4.index)}${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`; }
  const [head, tail] = s.includes('::') ? s.split('::') : [s, undefined];
  const hw = head ? head.split(':') : [];
  const tw = tail ? tail.split(':') : [];
  const words = tail === undefined ? hw : [...hw, ...Array(8 - hw.length - tw.length).fill('0'), ...tw];
  words.forEach((w, i) => { const n = parseInt(w, 16); out[i * 2] = n >> 8; out[i * 2 + 1] = n & 255; });
  return out;
}

/** An IPv6 address in its RFC 5952 text form. */
export function bytesToIp6(b: Uint8Array): string {
  const w = Array.from({ length: 8 }, (_x, i) => (b[i * 2] << 8) | b[i * 2 + 1]);
  let best = -1, bestLen = 1;
  for (let i = 0; i < 8;) {
    if (w[i] !== 0) { i++; continue; }
    let j = i; while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen) { best = i; bestLen = j - i; }
    i = j;
  }
  const hex = (a: number[]) => a.map((x) => x.toString(16)).join(':');
  return best < 0 ? hex(w) : `${hex(w.slice(0, best))}::${hex(w.slice(best + bestLen))}`;
}
