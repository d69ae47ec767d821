// IPv4 address arithmetic for validation and checks.
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
