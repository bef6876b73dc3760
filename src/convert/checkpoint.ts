// A llava-hf checkpoint as a `WeightSource`: the graph builders ask by the plain HF names
// (`vision_tower.vision_model.*`, `multi_modal_projector.*`, `model.*` of the LLaMA, `lm_head.weight`);
// this maps each to the checkpoint's own name layout, checks its shape against the config, and reads
// it as float32 (one tensor at a time).
//
// The two layouts llava-hf checkpoints use:
//   older transformers: vision_tower.vision_model.*, multi_modal_projector.*, language_model.model.*, language_model.lm_head.weight
//   newer transformers: model.vision_tower.vision_model.*, model.multi_modal_projector.*, model.language_model.*, lm_head.weight

import { ConvertError } from '../core';
import { transpose2d } from './floats';
import type { PlannedWeight, WeightInit, WeightSource } from './onnxBuilder';
import type { SafetensorsCheckpoint } from './safetensors';

export type NameLayout = 'language_model.model' | 'model.language_model';

/** Which layout a checkpoint's names follow; an error naming a tensor when neither. */
export function detectLayout(names: Iterable<string>): NameLayout {
  let first: string | undefined;
  for (const n of names) {
    first ??= n;
    if (n.startsWith('language_model.model.')) return 'language_model.model';
    if (n.startsWith('model.language_model.')) return 'model.language_model';
  }
  if (first === undefined) throw new ConvertError('model.safetensors', 'holds no tensors');
  throw new ConvertError(first, 'unknown parameter-name layout: expected language_model.model.* (older llava-hf) or model.language_model.* (newer)');
}

/** The checkpoint's name of the HF parameter `name` under `layout`. */
export function checkpointName(name: string, layout: NameLayout): string {
  const isText = name.startsWith('model.') || name.startsWith('lm_head.');
  if (layout === 'language_model.model') return isText ? `language_model.${name}` : name;
  if (name.startsWith('model.')) return `model.language_model.${name.slice('model.'.length)}`;
  return isText ? name : `model.${name}`;
}

const sameShape = (a: number[], b: number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

export class CheckpointSource implements WeightSource {
  readonly layout: NameLayout;

  constructor(
    private readonly ckpt: SafetensorsCheckpoint,
    /** LLaVA-1.5 unties lm_head; a tied model reads lm_head from the embedding table */
    private readonly tieWordEmbeddings = false,
  ) {
    this.layout = detectLayout(ckpt.tensors.keys());
  }

  /** The stored name of `name`, after the tied-embedding fallback. */
  resolve(name: string): string {
    const stored = checkpointName(name, this.layout);
    if (this.tieWordEmbeddings && name === 'lm_head.weight' && !this.ckpt.tensors.has(stored)) {
      return checkpointName('model.embed_tokens.weight', this.layout);
    }
    return stored;
  }

  /** Throws, naming the tensor, unless it is present with `shape` (PyTorch's layout). */
  check(name: string, shape: number[]): string {
    const stored = this.resolve(name);
    const info = this.ckpt.info(stored); // names the tensor when it is missing
    if (!sameShape(info.shape, shape)) {
      throw new ConvertError(stored, `has shape [${info.shape.join(', ')}]; config.json implies [${shape.join(', ')}]`);
    }
    return stored;
  }

  /** Every planned weight present with its shape, checked before anything is written. */
  checkAll(plan: PlannedWeight[]): void {
    for (const w of plan) this.check(w.name, w.torchShape);
  }

  tensor(name: string, dims: number[], _init: WeightInit): Float32Array {
    return this.ckpt.readF32(this.check(name, dims));
  }

  linear(name: string, K: number, N: number, _init: WeightInit, layout: 'KN' | 'NK'): Float32Array {
    // nn.Linear stores [out = N, in = K]
    const rows = this.ckpt.readF32(this.check(name, [N, K]));
    return layout === 'NK' ? rows : transpose2d(rows, N, K);
  }
}
