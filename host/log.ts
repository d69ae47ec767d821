// Structured logs: one JSON object per line on stdout ({"t":..., "level":..., "msg":..., fields}). journald and
// the virtual board's log files keep them as they are; `jq` reads them.
export type Level = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export class Logger {
  constructor(private readonly fields: Record<string, unknown> = {}, public level: Level = 'info',
    private readonly out: (line: string) => void = (l) => process.stdout.write(l + '\n')) {}

  child(fields: Record<string, unknown>): Logger { return new Logger({ ...this.fields, ...fields }, this.level, this.out); }

  log(level: Level, msg: string, fields: Record<string, unknown> = {}): void {
    if (ORDER[level] < ORDER[this.level]) return;
    this.out(JSON.stringify({ t: new Date().toISOString(), level, msg, ...this.fields, ...fields }, errorReplacer));
  }
  debug(msg: string, f?: Record<string, unknown>): void { this.log('debug', msg, f); }
  info(msg: string, f?: Record<string, unknown>): void { this.log('info', msg, f); }
  warn(msg: string, f?: Record<string, unknown>): void { this.log('warn', msg, f); }
  error(msg: string, f?: Record<string, unknown>): void { this.log('error', msg, f); }
}

function errorReplacer(_k: string, v: unknown): unknown {
  if (v instanceof Error) {
    const e = v as Error & { code?: string; syscall?: string; errno?: number };
    return { message: e.message, code: e.code, syscall: e.syscall, errno: e.errno };
  }
  return v;
}

export const silentLogger = new Logger({}, 'error', () => {});
