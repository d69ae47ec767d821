// After the host build: make dist/host/cli.js executable and link it as node_modules/.bin/duogate, so
// `npx duogate` in a checkout runs this build (npm links a package's own bin only for its dependents).
import { chmodSync, mkdirSync, rmSync, symlinkSync } from 'node:fs';
chmodSync('dist/host/cli.js', 0o755);
mkdirSync('node_modules/.bin', { recursive: true });
rmSync('node_modules/.bin/duogate', { force: true });
symlinkSync('../../dist/host/cli.js', 'node_modules/.bin/duogate');
