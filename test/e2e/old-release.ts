// The previous release of this repository, built from git for the rolling-upgrade test: `git archive` of the
// commit into /tmp/duogate-old-<hash>, node_modules shared with this checkout when the lockfile is the same (else
// `npm ci --offline`), then its own addon (node-gyp), core (asc) and host (tsc) build. Cached by commit: a
// `.built` marker is written last and the directory is renamed into place whole, so a second run (or one that
// races this one) reuses it, and an interrupted build is never taken for a finished one.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from '../../board/virtual/firmware.js';

/**
 * The previous release: the last stop whose whole CI passed before named networks were merged (notes: "the previous
 * stop landed", `.ci/run` 4364 passed on e920b00; 27404ef only adds README figures). Its config schema knows
 * wan/lan/sync only, and its state sync has no CAP_V6.
 */
export const OLD_RELEASE = '27404efc5fc0a7492502f5b2223db22f1f2e8041';

export interface OldBuild { commit: string; dir: string; cli: string; built: boolean; ms: number }

const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');

function run(cmd: string, args: string[], cwd: string, what: string): void {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: 600_000, maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) {
    throw new Error(`old release build: ${what} failed (${r.status ?? r.signal ?? r.error?.message}) in ${cwd}:\n${(r.stdout + r.stderr).trim().split('\n').slice(-20).join('\n')}`);
  }
}

/** Build (or reuse) `commit` of this repository; throws naming what to do when the clone lacks the commit. */
export function oldRelease(commit = OLD_RELEASE): OldBuild {
  const t0 = Date.now();
  const dir = `/tmp/duogate-old-${commit.slice(0, 12)}`;
  const cli = path.join(dir, 'dist/host/cli.js');
  const sameLock = (d: string) => sha(path.join(d, 'package-lock.json')) === sha(path.join(ROOT, 'package-lock.json')) && existsSync(path.join(ROOT, 'node_modules'));
  if (existsSync(path.join(dir, '.built')) && readFileSync(path.join(dir, '.built'), 'utf8').trim() === commit && existsSync(cli)) {
    const nm = path.join(dir, 'node_modules');
    // Shared with a checkout that is gone since (a deleted CI clone): the built files stand, share this one's.
    if (!existsSync(nm) && sameLock(dir)) { rmSync(nm, { force: true }); symlinkSync(path.join(ROOT, 'node_modules'), nm); }
    if (existsSync(nm)) return { commit, dir, cli, built: false, ms: Date.now() - t0 };
  }
  const has = spawnSync('git', ['-C', ROOT, 'cat-file', '-e', `${commit}^{commit}`]);
  if (has.status !== 0) {
    throw new Error(`DG_ERR_OLD_RELEASE: commit ${commit} (the previous release) is not in the clone at ${ROOT}: `
      + 'a shallow clone? run `git fetch --unshallow` (or clone with full history) for the rolling-upgrade test');
  }
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    const tar = execFileSync('git', ['-C', ROOT, 'archive', '--format=tar', commit], { maxBuffer: 512 * 1024 * 1024 });
    execFileSync('tar', ['-x', '-C', tmp], { input: tar });
    if (sameLock(tmp)) {
      symlinkSync(path.join(ROOT, 'node_modules'), path.join(tmp, 'node_modules'));
    } else {
      run('npm', ['ci', '--offline', '--ignore-scripts'], tmp, 'npm ci --offline (its lockfile differs from this checkout\'s)');
    }
    // Its own steps, not `npm run build`: that also links node_modules/.bin/duogate, which may be this checkout's.
    // Its `install` script is `node-gyp rebuild` (npm puts its own node-gyp on PATH); no postinstall.
    run('npm', ['run', 'install', '--ignore-scripts'], tmp, 'node-gyp rebuild (the native addon)');
    run('npm', ['run', 'build:core'], tmp, 'npm run build:core (asc)');
    run('npx', ['--no-install', 'tsc', '-p', 'tsconfig.json'], tmp, 'tsc (the host)');
    writeFileSync(path.join(tmp, '.built'), `${commit}\n`);
    rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  return { commit, dir, cli, built: true, ms: Date.now() - t0 };
}
