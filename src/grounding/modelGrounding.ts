// The configured model's grounding spec (box frame + referring prompts): a catalog entry's own
// data, else a local folder's `llava-grounding.json`, else LLaVA-1.5's defaults. Never an `if` on
// a model name: the frame is data on the entry.

import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { DEFAULT_GROUNDING, OVERRIDE_FILE, groundingFromOverride, type GroundingSpec } from './answerBoxes';

/** What the host's model store says about the configured model (structural: no host import here). */
export interface GroundingModelSource {
  current(): Promise<
    /** a catalog entry's data directly (e.g. a remote model named by a catalog id) */
    | { kind: 'catalog'; entry: { boxFrame: GroundingSpec['frame']; prompts: GroundingSpec['prompts'] } }
    /** a Hub model: a catalog entry's data, else (any other repo) its folder's override file */
    | { kind: 'hub'; model: { entry?: { boxFrame: GroundingSpec['frame']; prompts: GroundingSpec['prompts'] } }; folder: string }
    /** a local folder, or the model shipped inside the extension: the folder's override file */
    | { kind: 'folder' | 'builtin'; path: string }
    | { kind: 'invalid' }
  >;
  log: { warn(line: string): void };
}

export async function groundingForCurrentModel(models: GroundingModelSource): Promise<GroundingSpec> {
  const cur = await models.current();
  if (cur.kind === 'catalog') return { frame: cur.entry.boxFrame, prompts: cur.entry.prompts, source: 'catalog' };
  if (cur.kind === 'hub' && cur.model.entry) return { frame: cur.model.entry.boxFrame, prompts: cur.model.entry.prompts, source: 'catalog' };
  if (cur.kind === 'invalid') return DEFAULT_GROUNDING;
  const file = path.join(cur.kind === 'hub' ? cur.folder : cur.path, OVERRIDE_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return DEFAULT_GROUNDING; // no override file: the usual case
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    models.log.warn(`[grounding] ${file}: not JSON (${(err as Error).message}); using LLaVA-1.5's box format`);
    return DEFAULT_GROUNDING;
  }
  const spec = groundingFromOverride(json);
  if ('error' in spec) {
    models.log.warn(`[grounding] ${file}: ${spec.error}; using LLaVA-1.5's box format`);
    return DEFAULT_GROUNDING;
  }
  return spec;
}
