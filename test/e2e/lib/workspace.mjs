// A fresh, throwaway VS Code profile and workspace per run, so nothing leaks in from the home folder or an
// earlier run: user data, extensions dir, code-server config, XDG dirs, a browser profile, and a workspace
// holding a couple of images plus settings that point the extension at the tiny model.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createRequire } from 'node:module';

const IMAGE_EXT = /\.(png|jpe?g|webp)$/i;

/** Creates the temp tree; `root` is removed by `cleanup()` unless the caller keeps it for debugging. */
export async function makeSandbox({ repoRoot, modelDir }) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'llava-e2e-'));
  const dirs = {
    root,
    userData: path.join(root, 'user-data'),
    extensions: path.join(root, 'extensions'),
    xdg: path.join(root, 'xdg'),
    browserProfile: path.join(root, 'browser'),
    workspace: path.join(root, 'workspace'),
    tmp: path.join(root, 'tmp'),
  };
  for (const d of Object.values(dirs)) fs.mkdirSync(d, { recursive: true });
  for (const sub of ['config', 'data', 'cache']) fs.mkdirSync(path.join(dirs.xdg, sub), { recursive: true });

  // code-server reads its config file instead of ~/.config/code-server/config.yaml.
  dirs.configFile = path.join(root, 'code-server.yaml');
  fs.writeFileSync(dirs.configFile, 'auth: none\ncert: false\n');

  writeJson(path.join(dirs.userData, 'User', 'settings.json'), {
    'workbench.startupEditor': 'none',
    'workbench.tips.enabled': false,
    'workbench.enableExperiments': false,
    'security.workspace.trust.enabled': false,
    'telemetry.telemetryLevel': 'off',
    'update.mode': 'none',
    'extensions.autoCheckUpdates': false,
    'extensions.autoUpdate': false,
    'extensions.ignoreRecommendations': true,
    'chat.disableAIFeatures': true,
    'git.enabled': false,
    // Single-click in the Explorer opens a preview; we want the Explorer row selection to be deterministic.
    'workbench.editor.enablePreview': false,
  });

  const images = await populateImages(repoRoot, dirs.workspace);
  writeJson(path.join(dirs.workspace, '.vscode', 'settings.json'), {
    'llava.model': modelDir,
    'llava.executionProvider': 'cpu',
  });
  return { ...dirs, images, cleanup: () => fs.rmSync(root, { recursive: true, force: true }) };
}

/**
 * Copies up to two sample images from media/samples/ (PNG first: the context-menu test right-clicks a PNG);
 * when there are none, draws a PNG with sharp (the extension's own dependency).
 */
async function populateImages(repoRoot, workspace) {
  const samples = path.join(repoRoot, 'media', 'samples');
  let files = fs.existsSync(samples) ? fs.readdirSync(samples).filter((f) => IMAGE_EXT.test(f)).sort() : [];
  files.sort((a, b) => Number(!a.toLowerCase().endsWith('.png')) - Number(!b.toLowerCase().endsWith('.png')));
  files = files.slice(0, 2);
  const copied = files.map((f) => {
    fs.copyFileSync(path.join(samples, f), path.join(workspace, f));
    return f;
  });
  if (!copied.some((f) => f.toLowerCase().endsWith('.png'))) copied.unshift(await drawPng(repoRoot, workspace, 'generated.png'));
  if (copied.length < 2) copied.push(await drawPng(repoRoot, workspace, 'generated-2.png', true));
  return copied;
}

async function drawPng(repoRoot, workspace, name, flip = false) {
  const sharp = createRequire(path.join(repoRoot, 'package.json'))('sharp');
  const w = 96, h = 64;
  const rgb = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const i = (y * w + x) * 3;
    rgb[i] = Math.round((255 * (flip ? w - 1 - x : x)) / (w - 1));
    rgb[i + 1] = Math.round((255 * y) / (h - 1));
    rgb[i + 2] = 90;
  }
  await sharp(rgb, { raw: { width: w, height: h, channels: 3 } }).png().toFile(path.join(workspace, name));
  return name;
}

function writeJson(file, value) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(value, null, 2) + '\n');
}
