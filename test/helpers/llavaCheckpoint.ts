// Writes llava-hf checkpoints for the converter's tests and benchmark: safetensors with the real
// parameter names (either layout), BF16 / F16 / F32, single-file or sharded with
// model.safetensors.index.json, plus the fixture's config, tokenizer and template files. The values
// are the fixture generator's (seeded per name), so a converted checkpoint can be compared with the
// fixture graphs built from the same weights. Tensors are generated and written one at a time.

import { closeSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import * as path from 'node:path';
import { buildDecoder, buildEmbedTokens, buildVisionEncoder, f32ToBf16, f32ToF16, type PlannedWeight, type SafetensorsDtype, type WeightSource } from '../../src/convert';
import { checkpointName, type NameLayout } from '../../src/convert/checkpoint';
import { bf16ToF32 } from '../../src/convert/floats';
import { configFiles } from '../fixtures/configFiles';
import type { FixtureDef } from '../fixtures/models';
import { buildLlamaTokenizer } from '../fixtures/tokenizers';
import { prngSource } from '../fixtures/weights';

export interface CheckpointOptions {
  layout: NameLayout;
  dtype: SafetensorsDtype;
  /** 1: model.safetensors; more: model-0000i-of-0000n.safetensors + index */
  shards: number;
  /** keep the seeded values in memory (tests: the fixture graphs reuse them); off for big checkpoints */
  memo?: boolean;
}

/** Every weight the three graphs read, in HF names and PyTorch shapes. */
export function plannedWeights(def: FixtureDef): PlannedWeight[] {
  const plan: PlannedWeight[] = [];
  const opts = { fp16Weights: false, source: prngSource(def.spec.name), plan };
  buildVisionEncoder(def.spec, opts);
  buildEmbedTokens(def.spec, opts);
  buildDecoder(def.spec, opts);
  return plan;
}

/**
 * What a real checkpoint holds beyond what the graphs read: the vision tower's last layer (unused with
 * vision_feature_layer -2) and its post_layernorm. The converter must skip them.
 */
function unusedWeights(def: FixtureDef, plan: PlannedWeight[]): PlannedWeight[] {
  const tower = 'vision_tower.vision_model';
  const last = def.spec.vision.layers - 1;
  const used = new Set(plan.map((w) => w.name));
  const extra = plan
    .filter((w) => w.name.startsWith(`${tower}.encoder.layers.0.`))
    .map((w) => ({ ...w, name: w.name.replace('.layers.0.', `.layers.${last}.`) }))
    .filter((w) => !used.has(w.name));
  const d = def.spec.vision.hidden;
  extra.push({ name: `${tower}.post_layernorm.weight`, torchShape: [d], linear: false, init: { std: 0.05, mean: 1 } });
  extra.push({ name: `${tower}.post_layernorm.bias`, torchShape: [d], linear: false, init: { std: 0.02 } });
  return extra;
}

const BYTES: Record<SafetensorsDtype, number> = { F32: 4, F16: 2, BF16: 2 };

function encode(values: Float32Array, dtype: SafetensorsDtype): Uint8Array {
  const typed = dtype === 'F32' ? values : dtype === 'F16' ? f32ToF16(values) : f32ToBf16(values);
  return new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength);
}

/** A weight's values in PyTorch's layout ([out, in] for linear layers). */
function torchValues(source: WeightSource, w: PlannedWeight): Float32Array {
  if (!w.linear) return source.tensor(w.name, w.torchShape, w.init);
  const [N, K] = w.torchShape;
  return source.linear(w.name, K, N, w.init, 'NK');
}

function writeShard(file: string, weights: PlannedWeight[], source: WeightSource, opts: CheckpointOptions): void {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (const w of weights) {
    const bytes = w.torchShape.reduce((a, b) => a * b, 1) * BYTES[opts.dtype];
    header[checkpointName(w.name, opts.layout)] = { dtype: opts.dtype, shape: w.torchShape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8); // the format pads the header with spaces to 8 bytes
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  const fd = openSync(file, 'w');
  try {
    writeSync(fd, len);
    writeSync(fd, json);
    for (const w of weights) {
      const data = encode(torchValues(source, w), opts.dtype);
      for (let done = 0; done < data.byteLength; ) done += writeSync(fd, data, done, data.byteLength - done);
    }
  } finally {
    closeSync(fd);
  }
}

/** Writes the checkpoint folder `dir` for the fixture `def` (a LLaMA tokenizer fixture). Returns its data bytes. */
export function writeLlavaCheckpoint(dir: string, def: FixtureDef, opts: CheckpointOptions): number {
  mkdirSync(dir, { recursive: true });
  const plan = plannedWeights(def);
  const weights = [...plan, ...unusedWeights(def, plan)];
  const source = prngSource(def.spec.name, { memo: opts.memo ?? true });
  const sizeOf = (w: PlannedWeight) => w.torchShape.reduce((a, b) => a * b, 1) * BYTES[opts.dtype];
  const total = weights.reduce((n, w) => n + sizeOf(w), 0);
  for (const [file, text] of Object.entries(configFiles(def, buildLlamaTokenizer('<image>', '<pad>')))) writeFileSync(path.join(dir, file), text);
  if (opts.shards <= 1) {
    writeShard(path.join(dir, 'model.safetensors'), weights, source, opts);
    return total;
  }
  // cut into shards of about equal bytes, in order, like save_pretrained's max_shard_size
  const groups: PlannedWeight[][] = Array.from({ length: opts.shards }, () => []);
  let acc = 0;
  for (const w of weights) {
    groups[Math.min(opts.shards - 1, Math.floor((acc / total) * opts.shards))].push(w);
    acc += sizeOf(w);
  }
  const weightMap: Record<string, string> = {};
  groups.forEach((group, i) => {
    const name = `model-${String(i + 1).padStart(5, '0')}-of-${String(opts.shards).padStart(5, '0')}.safetensors`;
    writeShard(path.join(dir, name), group, source, opts);
    for (const w of group) weightMap[checkpointName(w.name, opts.layout)] = name;
  });
  writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2));
  return total;
}

/**
 * The fixture's weights as a checkpoint of `dtype` holds them: F16 and F32 keep the fixture values
 * exactly (they are on the float16 grid); BF16 rounds them. Build reference graphs from this.
 */
export function storedSource(def: FixtureDef, dtype: SafetensorsDtype): WeightSource {
  const source = prngSource(def.spec.name);
  if (dtype !== 'BF16') return source;
  const round = (v: Float32Array) => bf16ToF32(f32ToBf16(v));
  return {
    tensor: (name, dims, init) => round(source.tensor(name, dims, init)),
    linear: (name, K, N, init, layout) => round(source.linear(name, K, N, init, layout)),
  };
}
