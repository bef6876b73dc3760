// Starts code-server (the real VS Code workbench, served to a browser) on 127.0.0.1 in its own process group,
// and stops it by that group: killing only the main pid would leave the extension host (and the extension's
// forked engine process) running.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';

export async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * @param {{ e2eDir: string, sandbox: object, logFile: string, env?: Record<string,string> }} o
 * @returns {Promise<{ url: string, port: number, stop: () => Promise<void> }>}
 */
export async function startCodeServer({ e2eDir, sandbox, logFile, env = {} }) {
  const entry = path.join(e2eDir, 'node_modules', 'code-server', 'out', 'node', 'entry.js');
  if (!fs.existsSync(entry)) throw new Error(`code-server is not installed (${entry}); run test/e2e/setup.sh`);
  const port = await freePort();
  const log = fs.openSync(logFile, 'a');
  const child = spawn(process.execPath, [
    entry,
    '--config', sandbox.configFile,
    '--auth', 'none',
    '--bind-addr', `127.0.0.1:${port}`,
    '--disable-telemetry',
    '--disable-update-check',
    '--disable-workspace-trust',
    '--disable-getting-started-override',
    '--user-data-dir', sandbox.userData,
    '--extensions-dir', sandbox.extensions,
  ], {
    detached: true, // setsid: a new process group we can signal as a whole
    stdio: ['ignore', log, log],
    env: {
      ...process.env,
      // Keep code-server (and the extension host it spawns) out of the real home folder.
      XDG_CONFIG_HOME: path.join(sandbox.xdg, 'config'),
      XDG_DATA_HOME: path.join(sandbox.xdg, 'data'),
      XDG_CACHE_HOME: path.join(sandbox.xdg, 'cache'),
      // Temp files of the extension host and the suite (its test PNG) go away with the sandbox.
      TMPDIR: sandbox.tmp,
      ...env,
    },
  });
  fs.closeSync(log);
  let exited = false;
  const exitedPromise = new Promise((resolve) => child.on('exit', () => { exited = true; resolve(); }));

  const stop = async () => {
    if (child.pid === undefined) return;
    // The whole group: code-server, its extension host, file watchers, and any engine process.
    signalGroup(child.pid, 'SIGTERM');
    let timer;
    const graceful = await Promise.race([
      exitedPromise.then(() => true),
      new Promise((r) => { timer = setTimeout(() => r(false), 5000); }),
    ]);
    clearTimeout(timer);
    // Children may outlive the leader; SIGKILL whatever of the group is left either way.
    await sleep(graceful ? 300 : 0);
    signalGroup(child.pid, 'SIGKILL');
  };

  try {
    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (exited) throw new Error(`code-server exited during start-up; see ${logFile}`);
      if (await healthy(url)) break;
      if (Date.now() > deadline) throw new Error(`code-server did not answer /healthz within 30 s; see ${logFile}`);
      await sleep(250);
    }
    return { url, port, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

function signalGroup(pgid, sig) {
  try {
    process.kill(-pgid, sig);
  } catch (e) {
    if (e.code !== 'ESRCH') throw e; // ESRCH: the group is already gone
  }
}

async function healthy(url) {
  try {
    const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2000) });
    return res.ok;
  } catch {
    return false;
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
