// readModelFolder / chooseVariants over the real llava-hf/llava-1.5-7b-hf config files (test/data/real-configs),
// copied into a temp folder with empty placeholder ONNX files, plus broken variants of them.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { readModelFolder, chooseVariants, onnxFile, type OnnxFile, type OnnxSessionName } from '../../src/engine/modelFolder';
import { ModelFolderError } from '../../src/core/errors';
import type { DtypeVariant } from '../../src/core/types';
import { makeLlava15Folder, LLAVA15_DIR } from '../data/real-configs/llava15';

type Json = Record<string, any>;

async function withFolder<T>(edit: (dir: string) => void, fn: (dir: string) => Promise<T>, onnx?: string[]): Promise<T> {
  const { dir, cleanup } = makeLlava15Folder(onnx);
  try {
    edit(dir);
    return await fn(dir);
  } finally {
    cleanup();
  }
}
const readJson = (dir: string, f: string): Json => JSON.parse(readFileSync(path.join(dir, f), 'utf8'));
const writeJson = (dir: string, f: string, v: unknown) => writeFileSync(path.join(dir, f), JSON.stringify(v, null, 2));
const editJson = (f: string, change: (j: Json) => void) => (dir: string) => {
  const j = readJson(dir, f);
  change(j);
  writeJson(dir, f, j);
};

/** Asserts a ModelFolderError naming `file`, whose message matches `pattern`. */
async function rejectsNaming(p: Promise<unknown>, file: string, pattern: RegExp) {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof ModelFolderError, `expected ModelFolderError, got ${err}`);
    assert.equal(err.file, file);
    assert.equal(err.code, 'MODEL_FOLDER');
    assert.match(err.message, pattern);
    assert.ok(err.message.startsWith(`${file}: `), 'the message starts with the file');
    return true;
  });
}

describe('readModelFolder on the real llava-1.5-7b-hf configs', () => {
  test('reads the folder and fills text sizes the config omits from LlamaConfig defaults', async () => {
    await withFolder(() => {}, async (dir) => {
      const spec = await readModelFolder(dir);
      assert.equal(spec.dir, dir);
      assert.equal(spec.modelType, 'llava');
      // text_config only has vocab_size: the rest are transformers' LlamaConfig defaults
      // (hidden_size 4096, intermediate_size 11008, 32 layers, 32 heads, num_key_value_heads = heads).
      assert.deepEqual(spec.text, {
        modelType: 'llama', hiddenSize: 4096, intermediateSize: 11008, numLayers: 32, numHeads: 32, numKvHeads: 32, headDim: 128, vocabSize: 32064,
      });
      assert.equal(spec.config.image_token_index, 32000);
      assert.equal(spec.imageTokenId, 32000);
      assert.equal(spec.imageToken, '<image>');
      // processor_config.json counts the CLS row transformers.js never removes; recorded, not used for expansion.
      assert.equal(spec.numAdditionalImageTokens, 1);
      assert.deepEqual(spec.vision, { imageSize: 336, patchSize: 14 });
      assert.equal(spec.preprocess.mode, 'crop');
      assert.equal(spec.preprocess.width, 336);
      assert.equal(spec.preprocess.height, 336);
      assert.equal(spec.preprocess.shortestEdge, 336);
      assert.equal(spec.chatTemplate, readFileSync(path.join(LLAVA15_DIR, 'chat_template.jinja'), 'utf8'));
      assert.equal(spec.promptFormat, 'template');
      assert.deepEqual(spec.generation, { eosTokenIds: [2], bosTokenId: 1, padTokenId: 32001 });
      assert.equal(spec.tokenizerConfig.eos_token, '</s>');
      assert.equal((spec.tokenizerJson.model as Json).type, 'BPE');
      for (const s of ['vision_encoder', 'embed_tokens', 'decoder_model_merged'] as OnnxSessionName[]) {
        assert.deepEqual(spec.onnx[s].map((f) => f.variant), ['fp32']);
        assert.equal(spec.onnx[s][0].path, path.join(dir, 'onnx', `${s}.onnx`));
      }
    });
  });

  test('lists the variants present, their external data, and flags Git LFS pointers', async () => {
    const files = [
      'vision_encoder_fp16.onnx', 'vision_encoder_q4.onnx', 'embed_tokens.onnx', 'embed_tokens.onnx_data',
      'decoder_model_merged_q4f16.onnx', 'decoder_model_merged.onnx', 'decoder_model_merged.onnx_data', 'decoder_model_merged.onnx_data_1',
      'decoder_model_merged_int8.onnx', 'unrelated.onnx',
    ];
    await withFolder((dir) => {
      writeFileSync(path.join(dir, 'onnx', 'decoder_model_merged_int8.onnx'),
        'version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 123\n');
    }, async (dir) => {
      const spec = await readModelFolder(dir);
      assert.deepEqual(spec.onnx.vision_encoder.map((f) => f.variant).sort(), ['fp16', 'q4']);
      const dec = spec.onnx.decoder_model_merged;
      assert.deepEqual(dec.map((f) => f.variant).sort(), ['fp32', 'int8', 'q4f16']);
      const fp32 = dec.find((f) => f.variant === 'fp32')!;
      assert.deepEqual(fp32.externalData.map((p) => path.basename(p)), ['decoder_model_merged.onnx_data', 'decoder_model_merged.onnx_data_1']);
      assert.deepEqual(dec.find((f) => f.variant === 'q4f16')!.externalData, [], 'another variant\'s data is not its companion');
      assert.equal(dec.find((f) => f.variant === 'int8')!.lfsPointer, true);
      assert.equal(fp32.lfsPointer, false);
      assert.deepEqual(spec.onnx.embed_tokens[0].externalData.map((p) => path.basename(p)), ['embed_tokens.onnx_data']);
      // On CPU the LFS pointer (int8) is skipped; fp32 beats q4f16.
      assert.equal(chooseVariants(spec, 'cpu').decoder, 'fp32');
      await rejectsNaming(Promise.resolve().then(() => chooseVariants(spec, 'cpu', 'int8')), 'onnx/vision_encoder_int8.onnx', /not in this folder.*fp16, q4|q4, fp16/);
      assert.equal(onnxFile(spec, 'decoder_model_merged', 'q4f16').path, path.join(dir, 'onnx', 'decoder_model_merged_q4f16.onnx'));
    }, files);
  });

  test("config.json image_aspect_ratio 'pad' and the overrides", async () => {
    await withFolder(editJson('config.json', (j) => { j.image_aspect_ratio = 'pad'; }), async (dir) => {
      const spec = await readModelFolder(dir);
      assert.equal(spec.preprocess.mode, 'pad');
      assert.equal(spec.preprocess.width, 336);
    });
    await withFolder(() => {}, async (dir) => {
      const spec = await readModelFolder(dir, { overrides: { preprocessMode: 'pad', promptFormat: 'vicuna_v1' } });
      assert.equal(spec.preprocess.mode, 'pad');
      assert.equal(spec.promptFormat, 'vicuna_v1');
      assert.ok(spec.chatTemplate, 'the template is still read');
    });
  });

  test('chat template sources: tokenizer_config string, list of named templates, none', async () => {
    const template = JSON.parse(readFileSync(path.join(LLAVA15_DIR, 'chat_template.json'), 'utf8')).chat_template as string;
    const dropFiles = (dir: string) => {
      rmSync(path.join(dir, 'chat_template.json'));
      rmSync(path.join(dir, 'chat_template.jinja'));
    };
    await withFolder((dir) => { dropFiles(dir); editJson('tokenizer_config.json', (j) => { j.chat_template = template; })(dir); }, async (dir) => {
      const spec = await readModelFolder(dir);
      assert.equal(spec.chatTemplate, template);
      assert.equal(spec.promptFormat, 'template');
    });
    await withFolder((dir) => {
      dropFiles(dir);
      editJson('tokenizer_config.json', (j) => { j.chat_template = [{ name: 'tool_use', template: 'x' }, { name: 'default', template }]; })(dir);
    }, async (dir) => assert.equal((await readModelFolder(dir)).chatTemplate, template));
    await withFolder((dir) => {
      dropFiles(dir);
      editJson('tokenizer_config.json', (j) => { j.chat_template = [{ name: 'tool_use', template: 'x' }]; })(dir);
    }, (dir) => rejectsNaming(readModelFolder(dir), 'tokenizer_config.json', /no 'default' template.*tool_use/));
    await withFolder(dropFiles, async (dir) => {
      const spec = await readModelFolder(dir);
      assert.equal(spec.chatTemplate, undefined);
      assert.equal(spec.promptFormat, 'vicuna_v1', 'no template and no <|im_start|> token: vicuna_v1');
    });
  });

  test('generation_config eos list wins; without generation_config the tokenizer eos is used', async () => {
    await withFolder(editJson('generation_config.json', (j) => { j.eos_token_id = [2, 32001]; }), async (dir) => {
      assert.deepEqual((await readModelFolder(dir)).generation.eosTokenIds, [2, 32001]);
    });
    await withFolder((dir) => rmSync(path.join(dir, 'generation_config.json')), async (dir) => {
      // config.json has no eos_token_id: tokenizer_config.json's eos_token "</s>" is id 2.
      assert.deepEqual((await readModelFolder(dir)).generation, { eosTokenIds: [2], bosTokenId: 1, padTokenId: 32001 });
    });
  });
});

describe('readModelFolder errors name the file', () => {
  test('missing config.json', async () => {
    await withFolder((dir) => rmSync(path.join(dir, 'config.json')), (dir) => rejectsNaming(readModelFolder(dir), 'config.json', /missing/));
  });
  test('invalid JSON gives the position', async () => {
    await withFolder((dir) => writeFileSync(path.join(dir, 'config.json'), '{\n  "model_type": "llava",\n  oops\n}'),
      (dir) => rejectsNaming(readModelFolder(dir), 'config.json', /invalid JSON.*line 3/));
  });
  test('missing tokenizer.json', async () => {
    await withFolder((dir) => rmSync(path.join(dir, 'tokenizer.json')), (dir) => rejectsNaming(readModelFolder(dir), 'tokenizer.json', /missing/));
  });
  test('missing preprocessor_config.json', async () => {
    await withFolder((dir) => rmSync(path.join(dir, 'preprocessor_config.json')),
      (dir) => rejectsNaming(readModelFolder(dir), 'preprocessor_config.json', /missing/));
  });
  test('no onnx/ folder', async () => {
    await withFolder((dir) => rmSync(path.join(dir, 'onnx'), { recursive: true }), (dir) => rejectsNaming(readModelFolder(dir), 'onnx/', /no onnx\/ folder/));
  });
  test('a missing session', async () => {
    await withFolder(() => {}, (dir) => rejectsNaming(readModelFolder(dir), 'onnx/embed_tokens.onnx', /missing.*vision_encoder_q4\.onnx/),
      ['vision_encoder_q4.onnx', 'decoder_model_merged_q4.onnx']);
  });
  test('an unsupported model_type', async () => {
    await withFolder(editJson('config.json', (j) => { j.model_type = 'llava_next'; }),
      (dir) => rejectsNaming(readModelFolder(dir), 'config.json', /"llava_next" is not supported.*llava/));
  });
  test('image_token_index that is not a token of the tokenizer', async () => {
    await withFolder(editJson('config.json', (j) => { j.image_token_index = 32005; }),
      (dir) => rejectsNaming(readModelFolder(dir), 'config.json', /image_token_index 32005 is not a token/));
    await withFolder(editJson('config.json', (j) => { j.image_token_index = -200; }),
      (dir) => rejectsNaming(readModelFolder(dir), 'config.json', /-200/));
  });
  test('an image token string whose id contradicts config.json', async () => {
    await withFolder(editJson('processor_config.json', (j) => { j.image_token = '<pad>'; }),
      (dir) => rejectsNaming(readModelFolder(dir), 'processor_config.json', /"<pad>" is id 32001.*32000/));
  });
  test('vocab_size smaller than the tokenizer (larger is padding and fine)', async () => {
    await withFolder(editJson('config.json', (j) => { j.text_config.vocab_size = 32000; }),
      (dir) => rejectsNaming(readModelFolder(dir), 'config.json', /vocab_size 32000 is smaller than tokenizer\.json's 32002/));
    await withFolder(editJson('config.json', (j) => { j.text_config.vocab_size = 32128; }),
      async (dir) => assert.equal((await readModelFolder(dir)).text.vocabSize, 32128));
  });
  test('preprocessor size that contradicts vision_config.image_size', async () => {
    await withFolder(editJson('preprocessor_config.json', (j) => { j.crop_size = { height: 224, width: 224 }; }),
      (dir) => rejectsNaming(readModelFolder(dir), 'preprocessor_config.json', /224x224.*image_size is 336/));
  });
  test('preprocessor errors are wrapped', async () => {
    await withFolder(editJson('preprocessor_config.json', (j) => { delete j.size; delete j.crop_size; }),
      (dir) => rejectsNaming(readModelFolder(dir), 'preprocessor_config.json', /size/));
  });
  test('eos id outside the tokenizer', async () => {
    await withFolder(editJson('generation_config.json', (j) => { j.eos_token_id = 99999; }),
      (dir) => rejectsNaming(readModelFolder(dir), 'generation_config.json', /eos_token_id 99999/));
  });
});

describe('chooseVariants', () => {
  const specWith = (sets: Partial<Record<OnnxSessionName, DtypeVariant[]>> & { all?: DtypeVariant[] }) => {
    const list = (s: OnnxSessionName): OnnxFile[] =>
      (sets[s] ?? sets.all ?? []).map((variant) => ({ variant, path: `/m/onnx/${s}_${variant}.onnx`, bytes: 1, externalData: [], lfsPointer: false }));
    return { onnx: { vision_encoder: list('vision_encoder'), embed_tokens: list('embed_tokens'), decoder_model_merged: list('decoder_model_merged') } };
  };
  const all: DtypeVariant[] = ['fp32', 'fp16', 'q4', 'q4f16', 'int8', 'uint8', 'quantized', 'bnb4'];

  test('CPU prefers q4, then int8, quantized, uint8, fp32, and fp16 last', () => {
    const cases: [DtypeVariant[], DtypeVariant][] = [
      [all, 'q4'], [['fp32', 'fp16', 'int8', 'quantized'], 'int8'], [['fp32', 'quantized', 'uint8'], 'quantized'],
      [['fp32', 'uint8', 'fp16'], 'uint8'], [['fp16', 'fp32'], 'fp32'], [['fp16'], 'fp16'], [['fp16', 'q4f16'], 'q4f16'],
    ];
    for (const [available, expected] of cases) assert.equal(chooseVariants(specWith({ all: available }), 'cpu').decoder, expected, available.join(','));
  });

  test('GPU providers prefer fp16, q4f16, fp32, then the rest', () => {
    for (const ep of ['cuda', 'dml', 'coreml'] as const) {
      assert.equal(chooseVariants(specWith({ all }), ep).decoder, 'fp16');
      assert.equal(chooseVariants(specWith({ all: ['q4', 'q4f16', 'fp32'] }), ep).decoder, 'q4f16');
      assert.equal(chooseVariants(specWith({ all: ['q4', 'int8', 'fp32'] }), ep).decoder, 'fp32');
      assert.equal(chooseVariants(specWith({ all: ['int8', 'q4'] }), ep).decoder, 'q4');
    }
  });

  test('each session is chosen from its own files', () => {
    const spec = specWith({ vision_encoder: ['fp32', 'fp16'], embed_tokens: ['fp32', 'q4'], decoder_model_merged: ['q4f16', 'int8'] });
    assert.deepEqual(chooseVariants(spec, 'cpu'), { vision: 'fp32', embed: 'q4', decoder: 'int8' });
    assert.deepEqual(chooseVariants(spec, 'cuda'), { vision: 'fp16', embed: 'fp32', decoder: 'q4f16' });
  });

  test('an explicit override must exist for every session; the error lists what does', () => {
    const spec = specWith({ vision_encoder: ['fp32', 'fp16'], embed_tokens: ['fp16'], decoder_model_merged: ['fp16', 'q4'] });
    assert.deepEqual(chooseVariants(spec, 'cpu', 'fp16'), { vision: 'fp16', embed: 'fp16', decoder: 'fp16' });
    assert.throws(() => chooseVariants(spec, 'cuda', 'q4'), (err: unknown) => {
      assert.ok(err instanceof ModelFolderError);
      assert.equal(err.file, 'onnx/vision_encoder_q4.onnx');
      assert.match(err.message, /variant q4 is not in this folder; vision_encoder has: fp32, fp16/);
      return true;
    });
  });

  test('a folder where every file of a session is an LFS pointer has no usable variant', () => {
    const spec = specWith({ all: ['fp32'] });
    spec.onnx.decoder_model_merged[0].lfsPointer = true;
    assert.throws(() => chooseVariants(spec, 'cpu'), /decoder_model_merged.*fp32 \(Git LFS pointer\)/);
  });
});
