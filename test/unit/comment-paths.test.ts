// Every source file a comment names exists: a comment that points at a moved or deleted file sends the reader
// nowhere. Paths are tried from the repository root, from the commenting file's folder and its parents, and a
// bare file name must exist somewhere in the tree.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const tracked = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', 'assembly', 'host', 'board', 'test'], { cwd: ROOT, encoding: 'utf8' })
  .split('\n').filter((f) => /\.(ts|mjs|cc|h|sh)$/.test(f) && existsSync(path.join(ROOT, f)));
const basenames = new Set(tracked.map((f) => path.basename(f)));

/** The comment text of a line ('' if none): after `//` (not `://`), a block comment line, or `#` in shell. */
function commentOf(line: string, shell: boolean): string {
  if (shell) { const i = line.indexOf('#'); return i >= 0 && !line.slice(0, i).includes('$') ? line.slice(i + 1) : ''; }
  const s = line.trimStart();
  if (s.startsWith('*') || s.startsWith('/*')) return s;
  const m = /(^|[^:])\/\/(.*)$/.exec(line);
  return m ? m[2] : '';
}

// Source files anywhere, and the project's own documents (docs/*.md; the shared research notes live outside it).
const PATH = /(?<![\w*${}./-])((?:[\w.-]+\/)*[\w-]+(?:\.[\w-]+)*\.(?:ts|mjs|cc|sh)|docs\/[\w-]+\.md)\b/g;

function exists(ref: string, from: string): boolean {
  if (ref.startsWith('docs/')) return existsSync(path.join(ROOT, ref));
  if (!ref.includes('/')) return basenames.has(ref);
  for (let dir = path.dirname(path.join(ROOT, from)); dir.startsWith(ROOT); dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, ref))) return true;
    // Compiled paths (dist/...) name the source they were built from.
    if (ref.startsWith('dist/') && existsSync(path.join(ROOT, ref.slice(5)))) return true;
  }
  return false;
}

t.test('paths named in comments exist', async (t) => {
  const missing: string[] = [];
  let named = 0;
  for (const f of tracked) {
    const shell = f.endsWith('.sh');
    readFileSync(path.join(ROOT, f), 'utf8').split('\n').forEach((line, i) => {
      const text = commentOf(line, shell);
      for (const m of text.matchAll(PATH)) {
        // "docs/x.md (shared)" names the shared research notes, which are not part of this tree.
        if (m[1].startsWith('docs/') && /^[\s,(]*shared/.test(text.slice(m.index! + m[1].length))) continue;
        named++;
        if (!exists(m[1], f)) missing.push(`${f}:${i + 1}: ${m[1]}`);
      }
    });
  }
  t.ok(named > 50, `${named} paths named in comments of ${tracked.length} files`);
  t.same(missing, [], 'comments naming files that do not exist');
});

t.test('the check finds a missing file', async (t) => {
  t.notOk(exists('host/peer/heartbeat.ts', 'host/peer/config.ts'), 'a path that is not there');
  t.notOk(exists('nowhere-at-all.ts', 'host/peer/config.ts'), 'a bare name that is not there');
  t.ok(exists('carp/actions.ts', 'assembly/index.ts'), 'relative to the commenting file');
  t.ok(exists('host/peer/health.ts', 'host/peer/config.ts'), 'from the root');
  t.notOk(exists('docs/nothing.md', 'host/peer/config.ts'), 'a document that is not there');
});
