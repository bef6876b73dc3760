// Helpers for tests over the real llava-hf/llava-1.5-7b-hf config files stored beside this file.

import { mkdtempSync, readFileSync, readdirSync, writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { gunzipSync } from 'node:zlib';

export const LLAVA15_DIR = path.join(import.meta.dirname, 'llava-1.5-7b-hf');

/** The stored tokenizer.json text (kept gzipped in the repo). */
export function llava15TokenizerText(): string {
  return gunzipSync(readFileSync(path.join(LLAVA15_DIR, 'tokenizer.json.gz'))).toString('utf8');
}

export function readLlava15Json(file: string): Record<string, unknown> {
  return JSON.parse(readFileSync(path.join(LLAVA15_DIR, file), 'utf8'));
}

/**
 * A temp model folder: the real JSON/Jinja files, tokenizer.json unzipped and empty placeholder ONNX files
 * (`onnxFiles`, relative to onnx/). Returns the folder and a cleanup function.
 */
export function makeLlava15Folder(
  onnxFiles: string[] = ['vision_encoder.onnx', 'embed_tokens.onnx', 'decoder_model_merged.onnx'],
): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), 'llava15-'));
  for (const f of readdirSync(LLAVA15_DIR)) {
    if (f.endsWith('.json') || f.endsWith('.jinja')) writeFileSync(path.join(dir, f), readFileSync(path.join(LLAVA15_DIR, f)));
  }
  writeFileSync(path.join(dir, 'tokenizer.json'), llava15TokenizerText());
  mkdirSync(path.join(dir, 'onnx'));
  for (const f of onnxFiles) writeFileSync(path.join(dir, 'onnx', f), '');
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
