// Shared by the config-sync end-to-end tests and the demo plugin: node configs with a `configsync:` section,
// starting daemons with them on a virtual board, and a Python xmlrpc.client probe run inside a namespace.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { NodeName, VirtualBoard } from '../../board/virtual/board.js';
import { CLI, Firmware } from '../../board/virtual/firmware.js';
import { nodeConfigText } from '../helpers/config.js';

export const SYNC_PASSWORD = 'sync-secret-0123';

export interface VipSpec { iface: 'lan' | 'wan'; vhid: number; address: string; password: string; advskew: number; description?: string }
export const BOARD_VIPS: VipSpec[] = [
  { iface: 'lan', vhid: 1, address: '192.168.1.1/24', password: 'lan-carp-secret', advskew: 0, description: 'LAN gateway' },
  { iface: 'wan', vhid: 2, address: '203.0.113.1/24', password: 'wan-carp-secret', advskew: 0, description: 'WAN address for NAT' },
];

/** A node config. The secondary gets only its interfaces and the HA sync settings (no VIPs). */
export function nodeYaml(node: NodeName, dir: string, opts: { vips?: VipSpec[]; sync?: string; extra?: string } = {}): string {
  const vips = node === 'secondary' ? [] : (opts.vips ?? BOARD_VIPS);
  return `# written by the config-sync tests\n${nodeConfigText({
    // The primary names no LAN peer: the tests move VIPs onto any LAN address, the secondary's included.
    role: node, peers: node === 'primary' ? { lan: false } : true,
    vips: vips.map((v) => `{ interface: ${v.iface}, vhid: ${v.vhid}, address: ${v.address}, password: ${v.password}, advbase: 1, advskew: ${v.advskew}${v.description ? `, description: "${v.description}"` : ''} }`),
    extra: [
      `control: { socket: ${path.join(dir, `${node}.sock`)} }`,
      `state_dir: ${path.join(dir, 'state', node)}`,
      'configsync:',
      `  password: ${SYNC_PASSWORD}`,
      opts.sync ?? '',
      opts.extra ?? '',
    ].join('\n'),
  })}`;
}

/** The board's pair running the config-sync tests' own configs (nodeYaml), all under runDir/configsync. */
export class SyncPair extends Firmware {
  readonly dir: string;
  constructor(board: VirtualBoard) {
    super(board);
    this.dir = path.join(board.runDir, 'configsync');
    mkdirSync(this.dir, { recursive: true });
  }
  override configFile(node: NodeName): string { return path.join(this.dir, `${node}.yaml`); }
  override socket(node: NodeName): string { return path.join(this.dir, `${node}.sock`); }
  override stateDir(node: NodeName): string { return path.join(this.dir, 'state', node); }
  write(node: NodeName, yaml: string): void { writeFileSync(this.configFile(node), yaml); }
  async tryStatus(node: NodeName): Promise<any> { try { return await this.status(node); } catch { return null; } }

  /** `duogate config ...` inside the node's namespace (the config sync tests run no other command). */
  override cli(node: NodeName, args: string[]): { status: number | null; stdout: string; stderr: string } {
    return this.board.exec(node, process.execPath, [CLI, 'config', ...args, '--config', this.configFile(node), '--socket', this.socket(node)], { timeoutMs: 20_000 });
  }

  /** Run `python3` inside a namespace with the xmlrpc probe below; returns its JSON line. */
  python(node: NodeName, action: string, args: Record<string, unknown> = {}): any {
    const r = this.board.exec(node, 'python3', ['-c', PY_PROBE, action, JSON.stringify(args)], { timeoutMs: 20_000 });
    const line = r.stdout.trim().split('\n').pop() ?? '';
    try { return JSON.parse(line); } catch { throw new Error(`python probe ${action}: ${r.stdout}\n${r.stderr}`); }
  }
}

/**
 * The probe: Python's own xmlrpc.client against the secondary's server (certificate not verified: the test
 * checks the pinning on the duogate side), plus raw HTTPS posts for what xmlrpc.client cannot send.
 */
const PY_PROBE = String.raw`
import json, ssl, sys, base64, http.client, xmlrpc.client
action, a = sys.argv[1], json.loads(sys.argv[2])
host, port = a.get('host', '172.16.1.2'), a.get('port', 7443)
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
def proxy(user, pw):
    return xmlrpc.client.ServerProxy('https://%s:%s@%s:%d/RPC2' % (user, pw, host, port), context=ctx, allow_none=True)
def out(**kw):
    print(json.dumps(kw, default=str)); sys.exit(0)
def call(user, pw, method, *params):
    try:
        return out(ok=True, result=getattr(proxy(user, pw), method)(*params))
    except xmlrpc.client.Fault as f:
        return out(ok=False, fault=f.faultCode, message=f.faultString)
    except Exception as e:
        return out(ok=False, error=type(e).__name__, message=str(e))
def raw(body, user='duogate', pw=a.get('password')):
    c = http.client.HTTPSConnection(host, port, context=ctx, timeout=15)
    auth = base64.b64encode(('%s:%s' % (user, pw)).encode()).decode()
    try:
        c.request('POST', '/RPC2', body=body, headers={'Content-Type': 'text/xml', 'Authorization': 'Basic ' + auth})
        r = c.getresponse(); data = r.read().decode()
    except Exception as e:
        return out(ok=False, error=type(e).__name__, message=str(e))
    try:
        xmlrpc.client.loads(data)
        return out(ok=True, status=r.status)
    except xmlrpc.client.Fault as f:
        return out(ok=False, status=r.status, fault=f.faultCode, message=f.faultString)
if action == 'call':
    call(a.get('user', 'duogate'), a['password'], a['method'], *a.get('params', []))
elif action == 'raw':
    raw(a['body'].encode())
elif action == 'ratelimit':
    # n wrong logins back to back, then the right one: one process, so the attempts fall in one window.
    faults = []
    for pw in ['wrong-wrong-wrong'] * a['n'] + [a['password']]:
        try:
            proxy('duogate', pw).duogate.sync_status(); faults.append(0)
        except xmlrpc.client.Fault as f:
            faults.append(f.faultCode); last = f.faultString
    out(ok=True, faults=faults, message=last)
elif action == 'big':
    raw(b'<?xml version="1.0"?><methodCall><methodName>duogate.sync_status</methodName><params><param><value><string>' + b'x' * a['bytes'] + b'</string></value></param></params></methodCall>')
elif action == 'cert':
    import socket
    s = ctx.wrap_socket(socket.create_connection((host, port), timeout=5))
    import hashlib
    out(ok=True, sha256=hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest())
`;
