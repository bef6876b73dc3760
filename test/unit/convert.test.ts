// The conversion's behaviour around the graphs: resume by part, cancel, disk space checked first,
// missing / misshapen tensors named before anything is written, the copied side files, and the shapes
// the real llava-1.5-7b-hf config implies (nothing downloaded).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import onnxProto from 'onnx-proto';
import { EngineError } from '../../src/core';
import { MANIFEST, checkpointName, convertCheckpoint, detectLayout, estimateBytes, imageTokenCount, planSession, specFromLlavaConfig, type ConvertProgress } from '../../src/convert';
import { FIXTURES } from '../fixtures/index';
import { writeLlavaCheckpoint } from '../helpers/llavaCheckpoint';
import { readLlava15Json } from '../data/real-configs/llava15';

const tiny = FIXTURES.find((f) => f.spec.name === 'tiny-llava')!;
let root: string;
let ckpt: string;

before(() => {
  root = mkdtempSync(path.join(tmpdir(), 'convert-'));
  ckpt = path.join(root, 'ckpt');
  writeLlavaCheckpoint(ckpt, tiny, { layout: 'language_model.model', dtype: 'BF16', shards: 2 });
});
after(() => rmSync(root, { recursive: true, force: true }));

async function rejectsWith(fn: () => unknown, code: string, mentions: string): Promise<void> {
  await assert.rejects(async () => fn(), (err: unknown) => {
    assert.ok(err instanceof EngineError, `not an EngineError: ${err}`);
    assert.equal(err.code, code, err.message);
    assert.ok(err.message.includes(mentions), `"${err.message}" does not mention ${mentions}`);
    return true;
  });
}

const onnxFiles = (out: string) => (existsSync(path.join(out, 'onnx')) ? readdirSync(path.join(out, 'onnx')).sort() : []);

describe('resume and cancel', () => {
  test('a rerun skips finished parts; a removed part alone is redone', () => {
    const out = path.join(root, 'resume');
    const first = convertCheckpoint({ from: ckpt, out, dtypes: ['fp32', 'q4'] });
    assert.deepEqual(first.skipped, []);
    assert.equal(first.parts.length, 6);
    const decoderTime = statSync(path.join(out, 'onnx', 'decoder_model_merged.onnx')).mtimeMs;
    rmSync(path.join(out, 'onnx', 'vision_encoder_q4.onnx'));
    const second = convertCheckpoint({ from: ckpt, out, dtypes: ['fp32', 'q4'] });
    assert.deepEqual(second.parts.map((p) => p.file).filter((f) => !second.skipped.includes(f)), ['onnx/vision_encoder_q4.onnx']);
    assert.equal(statSync(path.join(out, 'onnx', 'decoder_model_merged.onnx')).mtimeMs, decoderTime, 'a finished part is not rewritten');
    assert.ok(existsSync(path.join(out, 'onnx', 'vision_encoder_q4.onnx')));
  });

  test('cancel mid-part: no partial files left; the next run keeps the finished parts and completes', async () => {
    const out = path.join(root, 'cancel');
    const controller = new AbortController();
    const seen: ConvertProgress[] = [];
    await rejectsWith(() => convertCheckpoint({
      from: ckpt, out, dtypes: ['fp32'], signal: controller.signal,
      onProgress: (p) => {
        seen.push(p);
        if (p.part.session === 'decoder_model_merged' && p.state === 'tensor') controller.abort();
      },
    }), 'ABORTED', 'cancelled');
    assert.deepEqual(onnxFiles(out), ['embed_tokens.onnx', 'vision_encoder.onnx'], 'no .partial or half-written decoder');
    const resumed = convertCheckpoint({ from: ckpt, out, dtypes: ['fp32'] });
    assert.deepEqual(resumed.skipped, ['onnx/vision_encoder.onnx', 'onnx/embed_tokens.onnx']);
    assert.deepEqual(onnxFiles(out), ['decoder_model_merged.onnx', 'embed_tokens.onnx', 'vision_encoder.onnx']);
    assert.ok(seen.some((p) => p.state === 'tensor' && p.bytesRead > 0 && p.bytesRead <= p.bytesTotal), 'progress counts bytes read');
  });

  test('a changed checkpoint is converted again, not resumed', () => {
    const out = path.join(root, 'changed');
    const src = path.join(root, 'ckpt-changed');
    writeLlavaCheckpoint(src, tiny, { layout: 'language_model.model', dtype: 'F16', shards: 1 });
    convertCheckpoint({ from: src, out, dtypes: ['fp32'] });
    writeLlavaCheckpoint(src, tiny, { layout: 'model.language_model', dtype: 'BF16', shards: 1 });
    assert.deepEqual(convertCheckpoint({ from: src, out, dtypes: ['fp32'] }).skipped, []);
    assert.ok(JSON.parse(readFileSync(path.join(out, MANIFEST), 'utf8')).done.length === 3);
  });
});

describe('checked before writing', () => {
  test('not enough disk space: DISK_SPACE naming the folder, nothing written', async () => {
    const out = path.join(root, 'full-disk');
    await rejectsWith(() => convertCheckpoint({ from: ckpt, out, dtypes: ['fp32'], freeBytes: () => 1000 }), 'DISK_SPACE', out);
    assert.deepEqual(onnxFiles(out), []);
  });

  test('a tensor missing from the checkpoint: CONVERT naming it, nothing written', async () => {
    const src = path.join(root, 'ckpt-3-layers');
    writeLlavaCheckpoint(src, tiny, { layout: 'language_model.model', dtype: 'F16', shards: 1 });
    const config = JSON.parse(readFileSync(path.join(src, 'config.json'), 'utf8'));
    config.text_config.num_hidden_layers = 3; // the checkpoint has 2
    writeFileSync(path.join(src, 'config.json'), JSON.stringify(config));
    const out = path.join(root, 'missing');
    await rejectsWith(() => convertCheckpoint({ from: src, out, dtypes: ['q4'] }), 'CONVERT', 'language_model.model.layers.2.input_layernorm.weight: missing');
    assert.deepEqual(onnxFiles(out), []);
  });

  test('config errors name the key: an unsupported text model, a list of feature layers', () => {
    const base = readLlava15Json('config.json');
    assert.throws(() => specFromLlavaConfig({ ...base, text_config: { model_type: 'mistral' } }), /text_config.model_type "mistral"/);
    assert.throws(() => specFromLlavaConfig({ ...base, vision_feature_layer: [-2, -5] }), /vision_feature_layer \[-2,-5\]/);
    assert.throws(() => specFromLlavaConfig({ ...base, model_type: 'llava_next' }), /model_type is "llava_next"/);
  });

  test('side files are copied; processor_config gets the image-token count transformers.js needs', () => {
    const src = path.join(root, 'ckpt-side');
    writeLlavaCheckpoint(src, tiny, { layout: 'language_model.model', dtype: 'F16', shards: 1 });
    const processor = JSON.parse(readFileSync(path.join(src, 'processor_config.json'), 'utf8'));
    writeFileSync(path.join(src, 'processor_config.json'), JSON.stringify({ ...processor, num_additional_image_tokens: 1 }));
    const config = JSON.parse(readFileSync(path.join(src, 'config.json'), 'utf8'));
    writeFileSync(path.join(src, 'config.json'), JSON.stringify({ ...config, image_aspect_ratio: 'pad' }));
    const out = path.join(root, 'side');
    convertCheckpoint({ from: src, out, dtypes: ['q4'] });
    for (const f of ['tokenizer.json', 'tokenizer_config.json', 'chat_template.json', 'generation_config.json', 'preprocessor_config.json', 'special_tokens_map.json']) {
      assert.equal(readFileSync(path.join(out, f), 'utf8'), readFileSync(path.join(src, f), 'utf8'), f);
    }
    assert.equal(JSON.parse(readFileSync(path.join(out, 'config.json'), 'utf8')).image_aspect_ratio, 'pad');
    assert.equal(JSON.parse(readFileSync(path.join(out, 'processor_config.json'), 'utf8')).num_additional_image_tokens, 0);
    assert.ok(!readdirSync(out).some((f) => f.endsWith('.safetensors')), 'weights are not copied');
  });
});

describe('the real llava-1.5-7b-hf config (shapes only)', () => {
  const spec = specFromLlavaConfig(readLlava15Json('config.json'));
  const params = (session: Parameters<typeof planSession>[1]) => planSession(spec, session).reduce((n, w) => n + w.torchShape.reduce((a, b) => a * b, 1), 0);

  test('the omitted LLaMA sizes take LlamaConfig defaults; CLIP ViT-L/14-336 from the file', () => {
    assert.deepEqual(
      { hidden: spec.text.hidden, layers: spec.text.layers, heads: spec.text.heads, kv: spec.text.kvHeads, inter: spec.text.intermediate, vocab: spec.text.vocab, eps: spec.text.eps },
      { hidden: 4096, layers: 32, heads: 32, kv: 32, inter: 11008, vocab: 32064, eps: 1e-5 },
    );
    assert.deepEqual([spec.vision.hidden, spec.vision.layers, spec.vision.heads, spec.vision.imageSize, spec.vision.patchSize], [1024, 24, 16, 336, 14]);
    assert.equal(imageTokenCount(spec), 576, '24 x 24 patches, class token dropped');
  });

  test('parameter counts per session, from the architecture written out by hand', () => {
    const d = 1024;
    const clipLayer = 4 * (d * d + d) + (d * 4096 + 4096) + (4096 * d + d) + 4 * d;
    const clipEmbeddings = d * 3 * 14 * 14 + d + 577 * d + 2 * d; // patch conv, class token, positions, pre_layrnorm
    const projector = (d * 4096 + 4096) + (4096 * 4096 + 4096);
    assert.equal(params('vision_encoder'), clipEmbeddings + 23 * clipLayer + projector, 'layer -2: 23 of 24 CLIP layers run');
    const h = 4096;
    const llamaLayer = 4 * h * h + 3 * h * 11008 + 2 * h;
    assert.equal(params('embed_tokens'), 32064 * h);
    assert.equal(params('decoder_model_merged'), 32 * llamaLayer + h + 32064 * h);
    const total = params('vision_encoder') + params('embed_tokens') + params('decoder_model_merged');
    assert.ok(total > 7.0e9 && total < 7.1e9, `${total} parameters is not LLaVA-1.5-7B's 7.06 B`);
  });

  test('output size per dtype: fp16 is half of fp32, q4 about a seventh', () => {
    const plan = planSession(spec, 'decoder_model_merged');
    const fp32 = estimateBytes(plan, 'fp32');
    assert.equal(estimateBytes(plan, 'fp16') * 2, fp32);
    const q4 = estimateBytes(plan, 'q4');
    // linear weights: 4 bits + one f32 scale per 32 values = 5 bits a weight; norms stay fp32
    assert.ok(q4 / fp32 > 5 / 32 - 0.01 && q4 / fp32 < 5 / 32 + 0.01, `q4/fp32 = ${q4 / fp32}`);
    assert.ok(fp32 > 2 ** 31, 'the 7B decoder is past 2 GB in every dtype, so it gets external data');
    assert.ok(q4 > 2 ** 31);
  });
});

describe("the real llava-1.5-7b-hf checkpoint index (names and byte total, no weights)", () => {
  const index = readLlava15Json('model.safetensors.index.json') as { metadata: { total_size: number }; weight_map: Record<string, string> };
  const spec = specFromLlavaConfig(readLlava15Json('config.json'));
  const plan = (['vision_encoder', 'embed_tokens', 'decoder_model_merged'] as const).flatMap((s) => planSession(spec, s));
  const names = Object.keys(index.weight_map);

  test('older layout; every tensor the graphs read is in it; what is left is the unused last CLIP layer and post_layernorm', () => {
    assert.equal(detectLayout(names), 'language_model.model');
    const stored = plan.map((w) => checkpointName(w.name, 'language_model.model'));
    const missing = stored.filter((n) => !(n in index.weight_map));
    assert.deepEqual(missing, []);
    const left = names.filter((n) => !stored.includes(n)).sort();
    assert.equal(left.length, 18);
    assert.ok(left.every((n) => n.startsWith('vision_tower.vision_model.encoder.layers.23.') || n.startsWith('vision_tower.vision_model.post_layernorm.')), left.join(', '));
  });

  test('total_size is exactly 2 bytes (F16) per parameter of the shapes computed from config.json', () => {
    const count = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
    const d = spec.vision.hidden;
    const lastLayer = 4 * (d * d + d) + (d * spec.vision.intermediate + spec.vision.intermediate) + (spec.vision.intermediate * d + d) + 4 * d;
    const postLayernorm = 2 * d;
    const planned = plan.reduce((n, w) => n + count(w.torchShape), 0);
    assert.equal(2 * (planned + lastLayer + postLayernorm), index.metadata.total_size);
  });
});

describe('llava convert (the CLI)', () => {
  const cli = (args: string[]) =>
    spawnSync(process.execPath, ['--import', 'tsx', path.join(__dirname, '..', '..', 'src', 'cli', 'index.ts'), 'convert', ...args], { encoding: 'utf8' });

  test('converts the listed dtypes and says what it did; a rerun finds them done', () => {
    const out = path.join(root, 'cli');
    const first = cli(['--from', ckpt, '--out', out, '--dtype', 'q4,fp16']);
    assert.equal(first.status, 0, first.stderr);
    assert.match(first.stdout, /converted ckpt: 6 part\(s\) written, 0 already done/);
    assert.deepEqual(onnxFiles(out), ['decoder_model_merged_fp16.onnx', 'decoder_model_merged_q4.onnx', 'embed_tokens_fp16.onnx', 'embed_tokens_q4.onnx', 'vision_encoder_fp16.onnx', 'vision_encoder_q4.onnx']);
    const again = cli(['--from', ckpt, '--out', out, '--dtype', 'q4,fp16']);
    assert.match(again.stdout, /0 part\(s\) written, 6 already done/);
  });

  test('--q4-scales search rewrites the q4 files (other scales, same size), not resumed from absmax; a bad value is a usage error', () => {
    const absmax = path.join(root, 'cli-absmax');
    const search = path.join(root, 'cli-search');
    assert.equal(cli(['--from', ckpt, '--out', absmax, '--dtype', 'q4']).status, 0);
    const first = cli(['--from', ckpt, '--out', search, '--dtype', 'q4']);
    assert.equal(first.status, 0, first.stderr);
    const searched = cli(['--from', ckpt, '--out', search, '--dtype', 'q4', '--q4-scales', 'search']);
    assert.equal(searched.status, 0, searched.stderr);
    assert.match(searched.stdout, /3 part\(s\) written, 0 already done/, 'absmax output is not taken for search');
    const file = (dir: string) => readFileSync(path.join(dir, 'onnx', 'decoder_model_merged_q4.onnx'));
    assert.equal(file(search).length, file(absmax).length);
    assert.ok(!file(search).equals(file(absmax)), 'search picked the same scales as absmax everywhere');
    const bad = cli(['--from', ckpt, '--out', search, '--q4-scales', 'mse']);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /^llava: --q4-scales must be one of absmax, search\n/);
  });

  test('--q4-block 16: every MatMulNBits has blocks of 16 (a scale per 16 weights of a row), not resumed from block 32; a bad size is a usage error', () => {
    const out = path.join(root, 'cli-block16');
    assert.equal(cli(['--from', ckpt, '--out', out, '--dtype', 'q4']).status, 0);
    const blocks = () => {
      const graph = onnxProto.onnx.ModelProto.decode(readFileSync(path.join(out, 'onnx', 'decoder_model_merged_q4.onnx'))).graph!;
      const nodes = graph.node!.filter((n) => n.opType === 'MatMulNBits');
      const scales = graph.initializer!.filter((t) => t.name!.endsWith('_scales')).reduce((n, t) => n + Number(t.dims![0]), 0);
      const attr = (n: (typeof nodes)[number], name: string) => Number(n.attribute!.find((a) => a.name === name)!.i);
      // one scale per block of each of the N rows of K weights
      const expected = (block: number) => nodes.reduce((sum, n) => sum + attr(n, 'N') * Math.ceil(attr(n, 'K') / block), 0);
      return { sizes: new Set(nodes.map((n) => attr(n, 'block_size'))), scales, expected };
    };
    const at32 = blocks();
    assert.deepEqual([...at32.sizes], [32]);
    const r = cli(['--from', ckpt, '--out', out, '--dtype', 'q4', '--q4-block', '16']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /3 part\(s\) written, 0 already done/, 'block-32 output is not taken for block 16');
    const at16 = blocks();
    assert.deepEqual([...at16.sizes], [16]);
    assert.equal(at32.scales, at32.expected(32));
    assert.equal(at16.scales, at16.expected(16));
    assert.ok(at16.scales > 1.8 * at32.scales);
    const bad = cli(['--from', ckpt, '--out', out, '--q4-block', '24']);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /^llava: --q4-block must be one of 16, 32, 64, 128\n/);
  });

  test('usage mistakes are one line plus the usage (exit 2); a bad folder is one line naming it (exit 1)', () => {
    const badDtype = cli(['--from', ckpt, '--out', path.join(root, 'x'), '--dtype', 'q4,int3']);
    assert.equal(badDtype.status, 2);
    assert.match(badDtype.stderr, /^llava: --dtype must be one of fp32, fp16, q4, q4f16\n\nUsage: llava convert/);
    const noFrom = cli(['--out', path.join(root, 'x')]);
    assert.equal(noFrom.status, 2);
    assert.match(noFrom.stderr, /--from DIR is required/);
    const empty = mkdtempSync(path.join(root, 'empty-'));
    writeFileSync(path.join(empty, 'config.json'), readFileSync(path.join(ckpt, 'config.json')));
    const noWeights = cli(['--from', empty, '--out', path.join(root, 'x')]);
    assert.equal(noWeights.status, 1);
    assert.match(noWeights.stderr, /^llava: empty-\w+: no model.safetensors or model.safetensors.index.json .* \[CONVERT\]\n$/);
    const noConfig = cli(['--from', root, '--out', path.join(root, 'x')]);
    assert.equal(noConfig.status, 1);
    assert.equal(noConfig.stderr, 'llava: config.json: missing (a llava-hf checkpoint folder has one) [CONVERT]\n');
  });
});
