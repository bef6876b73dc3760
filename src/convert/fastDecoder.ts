// decoder_model_merged, "fast" kind: the same inputs and outputs as the Hub-style decoder (so the engine
// runs either unchanged), built from onnxruntime's contrib ops instead of plain ones:
// SimplifiedLayerNormalization (RMSNorm), RotaryEmbedding (from position_ids, so left-padded rows keep
// HF's positions), GroupQueryAttention (attention + the cache append + grouped KV heads in one kernel;
// the padding/causal mask enters as its attention_bias) and MatMulNBits for the q4 linears. The cache
// axis is named IN_PLACE_KV_DIM: the engine may feed a preallocated cache longer than the mask and bind
// `present` to the same buffer, and GroupQueryAttention then appends in place (no per-step copy). The
// run's own keys and values are outputs too (NEW_KV_PREFIX), for an engine that appends them itself.
// Same weights, names and math as textGraphs.ts's buildDecoder.

import { DT, GraphBuilder, MS_DOMAIN, float, int, type BuilderOptions } from './onnxBuilder';
import { activation, linear } from './layers';
import { headDim, type LlavaSpec, type TextSpec } from './spec';
import { DIMS } from './textGraphs';
import { IN_PLACE_KV_DIM, NEW_KV_PREFIX } from '../core';

/** present: past + T positions, or the capacity of a cache updated in place */
const PRESENT_DIM = 'total_sequence_length_or_capacity';

function rmsNorm(b: GraphBuilder, x: string, name: string, t: TextSpec): string {
  const w = b.weight(`${name}.weight`, [t.hidden], { std: 0.05, mean: 1 });
  return b.op('SimplifiedLayerNormalization', [x, w], { axis: int(-1), epsilon: float(t.eps), stash_type: int(1) });
}

/** cos/sin caches [maxPositions, head_dim / 2] of HF Llama's rotary embedding (non-interleaved halves). */
function rotaryCaches(b: GraphBuilder, t: TextSpec): { cos: string; sin: string } {
  const hd = headDim(t);
  const cos = new Float32Array(t.maxPositions * (hd / 2));
  const sin = new Float32Array(t.maxPositions * (hd / 2));
  for (let p = 0; p < t.maxPositions; p++) {
    for (let i = 0; i < hd / 2; i++) {
      // float32 like torch: inv_freq in f32, then position * inv_freq in f32
      const angle = Math.fround(p * Math.fround(1 / t.ropeTheta ** ((2 * i) / hd)));
      cos[p * (hd / 2) + i] = Math.cos(angle);
      sin[p * (hd / 2) + i] = Math.sin(angle);
    }
  }
  return { cos: b.constTensor(cos, [t.maxPositions, hd / 2]), sin: b.constTensor(sin, [t.maxPositions, hd / 2]) };
}

/** attention_bias [B, 1, T, S]: 0 where query i may see key j (causal, key not padding), a large negative elsewhere. */
function attentionBias(b: GraphBuilder, inputsEmbeds: string, mask: string): string {
  const dimScalar = (x: string, axis: number) => b.op('Gather', [b.op('Shape', [x]), b.constI64([axis], [])], { axis: int(0) });
  const total = dimScalar(mask, 1);
  const past = b.op('Sub', [total, dimScalar(inputsEmbeds, 1)]);
  const one = b.constI64([1], []);
  const keyPos = b.op('Range', [b.constI64([0], []), total, one]);
  const queryPos = b.op('Range', [past, total, one]);
  const causal = b.op('LessOrEqual', [b.op('Unsqueeze', [keyPos, b.constI64([0])]), b.op('Unsqueeze', [queryPos, b.constI64([1])])]);
  const keep = b.op('Equal', [mask, b.constI64([1], [])]);
  const allowed = b.op('And', [causal, b.op('Unsqueeze', [keep, b.constI64([1, 2])])]);
  return b.op('Where', [allowed, b.scalar(0), b.scalar(-1e9)]);
}

export function buildFastDecoder(s: LlavaSpec, opts: BuilderOptions): GraphBuilder {
  const t = s.text;
  const hd = headDim(t);
  if (opts.fp16Weights) throw new Error('the fast decoder is written for fp32 activations (fp32 and q4)');
  // q4: int8 multiplies in MatMulNBits (accuracy_level 4), the way CPU int4 runtimes run them
  const b = new GraphBuilder('decoder_model_merged', { ...opts, q4AccuracyLevel: 4 });
  let x = b.input('inputs_embeds', DT.FLOAT, [DIMS.batch, DIMS.seq, t.hidden]);
  const mask = b.input('attention_mask', DT.INT64, [DIMS.batch, DIMS.total]);
  const positionIds = b.input('position_ids', DT.INT64, [DIMS.batch, DIMS.seq]);
  const past = Array.from({ length: t.layers }, (_, i) => ({
    key: b.input(`past_key_values.${i}.key`, DT.FLOAT, [DIMS.batch, t.kvHeads, IN_PLACE_KV_DIM, hd]),
    value: b.input(`past_key_values.${i}.value`, DT.FLOAT, [DIMS.batch, t.kvHeads, IN_PLACE_KV_DIM, hd]),
  }));
  const inputsEmbeds = x;
  const { cos, sin } = rotaryCaches(b, t);
  const bias = attentionBias(b, inputsEmbeds, mask);
  // every row attends over the whole (left-padded) cache; padding is masked by the bias, not by seqlens_k
  const totalI64 = b.op('Shape', [mask], { start: int(1), end: int(2) });
  const total = b.op('Cast', [b.op('Squeeze', [totalI64, b.constI64([0])])], { to: int(6) }); // int32 scalar
  const batch = b.op('Shape', [mask], { start: int(0), end: int(1) });
  const seqlensK = b.op('Cast', [b.op('Expand', [b.op('Sub', [totalI64, b.constI64([1])]), batch])], { to: int(6) }); // int32 [B]

  for (let i = 0; i < t.layers; i++) {
    const p = `model.layers.${i}`;
    const h = rmsNorm(b, x, `${p}.input_layernorm`, t);
    const rope = (y: string, heads: number) =>
      b.node('RotaryEmbedding', [y, positionIds, cos, sin], { interleaved: int(0), num_heads: int(heads) }, 1, MS_DOMAIN)[0];
    const q = rope(linear(b, h, `${p}.self_attn.q_proj`, t.hidden, t.heads * hd, t.qkvBias), t.heads); // [B, T, H*hd]
    const k = rope(linear(b, h, `${p}.self_attn.k_proj`, t.hidden, t.kvHeads * hd, t.qkvBias), t.kvHeads);
    const v = linear(b, h, `${p}.self_attn.v_proj`, t.hidden, t.kvHeads * hd, t.qkvBias);
    b.op('Identity', [k], {}, `${NEW_KV_PREFIX}${i}.key`);
    b.op('Identity', [v], {}, `${NEW_KV_PREFIX}${i}.value`);
    const [attn] = b.node(
      'GroupQueryAttention',
      [q, k, v, past[i].key, past[i].value, seqlensK, total, '', '', '', bias],
      { num_heads: int(t.heads), kv_num_heads: int(t.kvHeads), scale: float(1 / Math.sqrt(hd)) },
      [b.freshName('gqa'), `present.${i}.key`, `present.${i}.value`],
      MS_DOMAIN,
    );
    x = b.op('Add', [x, linear(b, attn, `${p}.self_attn.o_proj`, t.heads * hd, t.hidden, false)]);
    const h2 = rmsNorm(b, x, `${p}.post_attention_layernorm`, t);
    const gate = activation(b, linear(b, h2, `${p}.mlp.gate_proj`, t.hidden, t.intermediate, false), 'silu');
    const up = linear(b, h2, `${p}.mlp.up_proj`, t.hidden, t.intermediate, false);
    x = b.op('Add', [x, linear(b, b.op('Mul', [gate, up]), `${p}.mlp.down_proj`, t.intermediate, t.hidden, false)]);
  }
  // only the last position's logits: the next token is all a run is asked for, and lm_head over every
  // prompt position (T x vocab x hidden multiply-adds) would be most of a long prefill's work
  const last = b.op('Slice', [x, b.constI64([-1]), b.constI64([Number.MAX_SAFE_INTEGER]), b.constI64([1])]);
  const normed = rmsNorm(b, last, 'model.norm', t);
  b.op('Identity', [linear(b, normed, 'lm_head', t.hidden, t.vocab, false, 0.15)], {}, 'logits');
  b.output('logits', DT.FLOAT, [DIMS.batch, 1, t.vocab]);
  for (let i = 0; i < t.layers; i++) {
    b.output(`present.${i}.key`, DT.FLOAT, [DIMS.batch, t.kvHeads, PRESENT_DIM, hd]);
    b.output(`present.${i}.value`, DT.FLOAT, [DIMS.batch, t.kvHeads, PRESENT_DIM, hd]);
  }
  for (let i = 0; i < t.layers; i++) {
    b.output(`${NEW_KV_PREFIX}${i}.key`, DT.FLOAT, [DIMS.batch, DIMS.seq, t.kvHeads * hd]);
    b.output(`${NEW_KV_PREFIX}${i}.value`, DT.FLOAT, [DIMS.batch, DIMS.seq, t.kvHeads * hd]);
  }
  return b;
}
