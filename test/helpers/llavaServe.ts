// Starts a real `llava serve` (the CLI from source, through tsx) on a free loopback port and waits for
// its "listening on" line. Used by the server tests and by the remote-backend tests.

import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';

const ROOT = path.join(__dirname, '..', '..');

export interface ServeProcess {
  url: string;
  child: ChildProcess;
  /** everything the server wrote to stderr so far */
  stderr(): string;
  /** resolves with the exit code */
  exited: Promise<number | null>;
}

export async function startLlavaServe(modelDir: string, extra: string[] = []): Promise<ServeProcess> {
  const args = ['--import', 'tsx', path.join(ROOT, 'src/cli/index.ts'), 'serve', '--model', modelDir, '--provider', 'cpu', '--variant', 'fp32', '--threads', '1', '--port', '0', ...extra];
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  let out = '';
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
    void exited.then((code) => reject(new Error(`llava serve exited (${code}) before listening: ${err.slice(-800)}`)));
  });
  return { url, child, stderr: () => err, exited };
}
