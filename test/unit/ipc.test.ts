// The engine process boundary: the real EngineClient forks a real engine server (server.ts's
// serveEngine) over real IPC. Only the model is a test double: this same file, started with
// LLAVA_FAKE_ENGINE=1, becomes the forked process and serves a fake engine whose answers are
// computed from its inputs (so the test can compute the expected text independently).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { EngineClient, type EngineState } from '../../src/engine-process/client';
import { EngineExitedError, isEngineRequest, isEngineResponse, serializeError, deserializeError } from '../../src/engine-process/messages';
import { EngineError, ModelFolderError, AbortedError } from '../../src/core/errors';
import type { ChatTurn, GenerateOptions, GenerationEvent, GenerationStats, LoadedModelInfo } from '../../src/core/types';

const SELF = fileURLToPath(import.meta.url);

// ---- the fake engine (runs in the child) -----------------------------------------------------

function fakeInfo(dir: string): LoadedModelInfo {
  return {
    dir,
    modelType: 'fake',
    provider: 'cpu',
    fallbackReason: '',
    variants: { vision: 'fp32', embed: 'fp32', decoder: 'fp32' },
    imageTokensPerImage: 4,
    promptFormat: 'chatml',
    loadMs: 1,
  };
}

function stats(newTokens: number, stopReason: GenerationStats['stopReason']): GenerationStats {
  return { promptTokens: 1, newTokens, imageTokens: 0, timeToFirstTokenMs: 0, decodeTokensPerSecond: 0, totalMs: 0, stopReason, tokenIds: [] };
}

const tick = () => new Promise((r) => setTimeout(r, 5));

/** Answers "<question words> | bytes=<n> sum=<sum of image bytes>" one word per delta. */
async function* fakeGenerate(turns: ChatTurn[], opts: GenerateOptions = {}): AsyncGenerator<GenerationEvent> {
  const last = turns[turns.length - 1];
  const q = last.text;
  if (q === 'throw') throw new EngineError('GENERATION', 'fake generation failure');
  if (q === 'flags') {
    // what arrived of each image's `downscale` flag, and a geometry per image as the engine reports it
    const images = turns.flatMap((t) => t.images ?? []);
    const flags = images.map((img) => ('downscale' in img && img.downscale === true ? 'downscale' : 'full'));
    const g = { mode: 'pad' as const, originalWidth: 9000, originalHeight: 8000, inputWidth: 84, inputHeight: 84, padLeft: 0, padTop: 500, scaleX: 84 / 9000, scaleY: 84 / 9000, cropLeft: 0, cropTop: 0 };
    const geometries = images.map((img) => ('downscale' in img && img.downscale ? { ...g, downscaledTo: { width: 4096, height: 3641 } } : g));
    yield { type: 'delta', text: flags.join(',') };
    yield { type: 'done', text: flags.join(','), stats: stats(1, 'eos'), images: geometries };
    return;
  }
  if (q === 'crash') {
    yield { type: 'delta', text: 'about to crash ' };
    await tick();
    process.exit(3);
  }
  let words: string[];
  if (q === 'hang') words = Array.from({ length: 100000 }, () => 'x ');
  else {
    let n = 0;
    let sum = 0;
    for (const t of turns)
      for (const img of t.images ?? [])
        if ('bytes' in img) {
          // the bytes must arrive as a real typed array, not a JSON-ish object
          if (!(img.bytes instanceof Uint8Array)) throw new Error('image bytes lost their type');
          n += img.bytes.length;
          for (const b of img.bytes) sum += b;
        }
    words = `${q} | bytes=${n} sum=${sum} turns=${turns.length}`.split(/(?<= )/);
  }
  let text = '';
  for (const w of words) {
    if (opts.signal?.aborted) {
      yield { type: 'done', text, stats: stats(text.length, 'aborted') };
      return;
    }
    text += w;
    yield { type: 'delta', text: w };
    await tick();
  }
  yield { type: 'done', text, stats: stats(words.length, 'eos') };
}

async function runFakeEngineProcess(): Promise<void> {
  const { serveEngine, processChannel } = await import('../../src/engine-process/server');
  serveEngine(processChannel(), async () => ({
    async loadModel(dir) {
      if (dir === '/missing') throw new ModelFolderError('/missing/config.json', 'not found');
      await tick();
      return { info: fakeInfo(dir), generate: fakeGenerate, dispose: async () => {} };
    },
  }));
}

// ---- the tests (run in the parent) ---------------------------------------------------------

const MODEL = { modelDir: '/fake/model', provider: 'auto', threads: 0 } as const;

function newClient(idleTimeoutMs = 0): EngineClient {
  return new EngineClient({
    modulePath: SELF,
    execArgv: ['--import', 'tsx'],
    env: { LLAVA_FAKE_ENGINE: '1', LLAVA_ENGINE_PROCESS: '0' },
    idleTimeoutMs,
  });
}

async function collect(it: AsyncIterable<GenerationEvent>): Promise<{ deltas: string[]; done?: Extract<GenerationEvent, { type: 'done' }> }> {
  const deltas: string[] = [];
  let done: Extract<GenerationEvent, { type: 'done' }> | undefined;
  for await (const ev of it) {
    if (ev.type === 'delta') deltas.push(ev.text);
    else done = ev;
  }
  return { deltas, done };
}

function waitForState(c: EngineClient, s: EngineState): Promise<void> {
  return new Promise((resolve) => {
    if (c.state === s) return resolve();
    const sub = c.onDidChangeState((st) => {
      if (st === s) {
        sub.dispose();
        resolve();
      }
    });
  });
}

if (process.env.LLAVA_FAKE_ENGINE === '1') {
  void runFakeEngineProcess();
} else {
  test('streams deltas lazily loading the model; image bytes cross as a Uint8Array', async (t) => {
    const c = newClient();
    t.after(() => c.dispose());
    const states: EngineState[] = [];
    c.onDidChangeState((s) => states.push(s));
    let loaded: LoadedModelInfo | undefined;
    c.onDidChangeModel((i) => (loaded = i));
    assert.equal(c.pid, undefined, 'no process before the first request');
    const bytes = new Uint8Array([1, 2, 3, 250]);
    const turns: ChatTurn[] = [{ role: 'user', text: 'what is this?', images: [{ bytes, name: 'a.png' }] }];
    const { deltas, done } = await collect(c.generate(MODEL, turns, {}));
    assert.ok(deltas.length > 1, 'the answer arrives in several deltas');
    assert.equal(deltas.join(''), done?.text);
    assert.equal(done?.text, 'what is this? | bytes=4 sum=256 turns=1');
    assert.equal(done?.stats.stopReason, 'eos');
    assert.equal(loaded?.dir, MODEL.modelDir);
    assert.equal(c.modelInfo?.provider, 'cpu');
    assert.ok(states.includes('loading'), `states: ${states}`);
    assert.ok(states.includes('generating'), `states: ${states}`);
    assert.equal(c.state, 'idle');
    assert.equal(typeof c.pid, 'number');
  });

  test('typed engine errors keep their code across the boundary', async (t) => {
    const c = newClient();
    t.after(() => c.dispose());
    await assert.rejects(c.load({ ...MODEL, modelDir: '/missing' }), (err: unknown) => {
      assert.ok(err instanceof EngineError);
      assert.equal(err.code, 'MODEL_FOLDER');
      assert.match(err.message, /config\.json/);
      return true;
    });
    assert.equal(c.state, 'error');
    await assert.rejects(collect(c.generate(MODEL, [{ role: 'user', text: 'throw' }])), (err: unknown) => {
      assert.ok(err instanceof EngineError);
      assert.equal(err.code, 'GENERATION');
      return true;
    });
    // the process survives typed errors
    const info = await c.load(MODEL);
    assert.equal(info.dir, MODEL.modelDir);
  });

  test('aborting the signal cancels the generation in the engine; the process stays usable', async (t) => {
    const c = newClient();
    t.after(() => c.dispose());
    const ac = new AbortController();
    let n = 0;
    let done: Extract<GenerationEvent, { type: 'done' }> | undefined;
    let aborted = false;
    try {
      for await (const ev of c.generate(MODEL, [{ role: 'user', text: 'hang' }], { signal: ac.signal })) {
        if (ev.type === 'delta' && ++n === 3) ac.abort();
        if (ev.type === 'done') done = ev;
      }
    } catch (err) {
      assert.ok(err instanceof AbortedError, String(err));
      aborted = true;
    }
    assert.ok(aborted || done?.stats.stopReason === 'aborted', 'the stream ended as cancelled');
    assert.ok(n < 100000, 'it stopped long before the end');
    const pid = c.pid;
    const { done: d2 } = await collect(c.generate(MODEL, [{ role: 'user', text: 'again' }]));
    assert.equal(d2?.text, 'again | bytes=0 sum=0 turns=1');
    assert.equal(c.pid, pid, 'same process');
  });

  test('leaving the loop early cancels the engine work', async (t) => {
    const c = newClient();
    t.after(() => c.dispose());
    for await (const ev of c.generate(MODEL, [{ role: 'user', text: 'hang' }])) {
      if (ev.type === 'delta') break;
    }
    // requests are served in order, so this answer proves the hanging generation ended
    const { done } = await collect(c.generate(MODEL, [{ role: 'user', text: 'next' }]));
    assert.equal(done?.text, 'next | bytes=0 sum=0 turns=1');
    const st = await c.status();
    assert.equal(st?.busy, false);
    assert.equal(st?.loaded?.dir, MODEL.modelDir);
  });

  test('a crash rejects the in-flight request; the next request starts a new process', async (t) => {
    const c = newClient();
    t.after(() => c.dispose());
    await c.load(MODEL);
    const firstPid = c.pid;
    await assert.rejects(collect(c.generate(MODEL, [{ role: 'user', text: 'crash' }])), (err: unknown) => {
      assert.ok(err instanceof EngineExitedError, String(err));
      assert.equal(err.exitCode, 3);
      return true;
    });
    assert.equal(c.state, 'error');
    assert.equal(c.modelInfo, undefined, 'the model went with the process');
    const { done } = await collect(c.generate(MODEL, [{ role: 'user', text: 'hello' }]));
    assert.equal(done?.text, 'hello | bytes=0 sum=0 turns=1');
    assert.notEqual(c.pid, firstPid);
  });

  test('kill() rejects pending requests with EngineExitedError', async (t) => {
    const c = newClient();
    t.after(() => c.dispose());
    const it = c.generate(MODEL, [{ role: 'user', text: 'hang' }]);
    const p = collect(it);
    await waitForState(c, 'generating');
    c.kill();
    await assert.rejects(p, EngineExitedError);
  });

  test('an engine that cannot be spawned rejects its pending requests instead of leaving them hanging', async (t) => {
    const c = new EngineClient({ modulePath: SELF, execPath: '/nonexistent/llava-test/node' });
    t.after(() => c.dispose());
    const started = Date.now();
    let timer: NodeJS.Timeout | undefined;
    const hang = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('still pending after 5 s')), 5000)));
    await assert.rejects(Promise.race([collect(c.generate(MODEL, [{ role: 'user', text: 'hi' }])), hang]), (err: unknown) => {
      assert.ok(err instanceof EngineExitedError, String(err));
      assert.match(err.message, /could not be started/);
      return true;
    });
    await assert.rejects(Promise.race([c.load(MODEL), hang]), EngineExitedError);
    clearTimeout(timer);
    assert.ok(Date.now() - started < 5000);
  });

  test('the idle timeout stops the process and the next request restarts it', async (t) => {
    const c = newClient(150);
    t.after(() => c.dispose());
    await c.load(MODEL);
    const firstPid = c.pid;
    await waitForState(c, 'stopped');
    assert.equal(c.pid, undefined);
    const { done } = await collect(c.generate(MODEL, [{ role: 'user', text: 'back' }]));
    assert.equal(done?.text, 'back | bytes=0 sum=0 turns=1');
    assert.notEqual(c.pid, firstPid);
  });

  test('an image\'s downscale flag crosses to the engine; the copy\'s size comes back in the geometry', async (t) => {
    const c = newClient();
    t.after(() => c.dispose());
    const bytes = new Uint8Array([1, 2, 3]);
    const turns: ChatTurn[] = [
      { role: 'user', text: 'flags', images: [{ bytes, name: 'a.png' }, { bytes, name: 'big.png', downscale: true }] },
    ];
    const { done } = await collect(c.generate(MODEL, turns));
    assert.equal(done?.text, 'full,downscale');
    assert.equal(done?.images?.length, 2);
    assert.equal(done?.images?.[0].downscaledTo, undefined);
    assert.deepEqual(done?.images?.[1].downscaledTo, { width: 4096, height: 3641 });
    assert.equal(done?.images?.[1].originalWidth, 9000, 'the geometry still names the original size');
    assert.ok(isEngineRequest({ type: 'generate', requestId: 1, model: MODEL, turns, options: {} }));
  });

  test('guards reject malformed messages; errors round-trip', () => {
    assert.ok(isEngineRequest({ type: 'cancel', requestId: 1 }));
    assert.ok(isEngineRequest({ type: 'load', requestId: 1, modelDir: '/m', provider: 'cpu', threads: 2 }));
    assert.ok(!isEngineRequest({ type: 'load', requestId: 1, modelDir: '/m', provider: 'tpu', threads: 2 }));
    assert.ok(!isEngineRequest({ type: 'load', requestId: 1, modelDir: '/m', provider: 'cpu', threads: -1 }));
    assert.ok(!isEngineRequest({ type: 'generate', requestId: 1, model: MODEL, turns: [{ role: 'system', text: '' }], options: {} }));
    assert.ok(!isEngineRequest({ type: 'nope', requestId: 1 }));
    assert.ok(!isEngineRequest(null));
    assert.ok(isEngineResponse({ type: 'delta', requestId: 2, text: 'a' }));
    assert.ok(!isEngineResponse({ type: 'delta', requestId: '2', text: 'a' }));
    assert.ok(!isEngineResponse({ type: 'error', requestId: 2, error: { message: 'x' } }));
    const back = deserializeError(serializeError(new ModelFolderError('x.json', 'bad')));
    assert.ok(back instanceof EngineError);
    assert.equal((back as EngineError).code, 'MODEL_FOLDER');
    assert.equal(back.message, 'x.json: bad');
    assert.equal(serializeError(new TypeError('boom')).code, 'INTERNAL');
    assert.ok(deserializeError(serializeError(new AbortedError())) instanceof AbortedError);
  });
}
