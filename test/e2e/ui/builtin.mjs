// The built-in model (models/builtin, shipped in the VSIX; `llava.model: builtin`) answers about the demo image
// media/samples/shapes.png in the real workbench. The truth is the scene generator's own record of the image
// (media/samples/shapes.json: every shape's class, colour and box in image pixels), not anything the extension
// computes. (The Find box waits for a model that has learned grounding: training/pending/builtinFind.mjs.)
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { askInWebview, expectImageShown, explorerMenu, panelWithImage } from '../lib/webview.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const ARTIFACTS = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'artifacts');
const IMAGE = 'shapes.png';
const CONTEXT = JSON.parse(fs.readFileSync(path.join(REPO, 'media', 'samples', 'shapes.json'), 'utf8'));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const settingsFile = (sandbox) => path.join(sandbox.workspace, '.vscode', 'settings.json');

/**
 * Runs `fn(frame, star)` in a chat panel about shapes.png with `llava.model: builtin`, then puts the workspace
 * and its settings back. `star` is the generator's record of the image's star (class, colour, box).
 */
export async function withBuiltinPanel(page, sandbox, fn) {
  const saved = fs.readFileSync(settingsFile(sandbox), 'utf8');
  fs.copyFileSync(path.join(REPO, 'media', 'samples', IMAGE), path.join(sandbox.workspace, IMAGE));
  fs.writeFileSync(settingsFile(sandbox), JSON.stringify({ ...JSON.parse(saved), 'llava.model': 'builtin' }, null, 2) + '\n');
  try {
    await sleep(1500); // the Explorer shows the new file; the extension reads the new setting
    await explorerMenu(page, IMAGE, 'Ask About Image');
    const frame = await panelWithImage(page, IMAGE);
    await expectImageShown(frame);
    return await fn(frame, CONTEXT.objects.find((o) => o.class === 'star') ?? CONTEXT.objects[0]);
  } finally {
    fs.writeFileSync(settingsFile(sandbox), saved);
    fs.rmSync(path.join(sandbox.workspace, IMAGE), { force: true });
  }
}

export function builtinModelAnswers({ page, shots, sandbox }) {
  return withBuiltinPanel(page, sandbox, async (frame, star) => {
    const q = `What colour is the ${star.class}?\nAnswer the question using a single word or phrase.`;
    const { text } = await askInWebview(page, frame, q, { shots, label: 'builtin-colour' });
    assert.equal(text.trim().toLowerCase(), star.colour, `the ${star.class} is ${star.colour}; the built-in model said ${JSON.stringify(text)}`);
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, 'builtin-answer.png') });
    return `"${text.trim()}" for the ${star.class}`;
  });
}

export const builtinTests = [['Built-in model: answers about the demo image (the colour of its star)', builtinModelAnswers]];
