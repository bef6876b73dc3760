// `llava serve`: the model behind an OpenAI-compatible HTTP API (src/server/), so any OpenAI client,
// or another machine's LLaVA extension (llava.backend = openai), can use it. Loopback by default;
// SIGTERM / SIGINT stop accepting, let running answers finish, then unload the model.

import * as path from 'node:path';
import { stat } from 'node:fs/promises';
import { startServer } from '../server';
import { int, parse, UsageError, type CliCommand } from './args';
import { MODEL_OPTIONS, MODEL_USAGE, openModel } from './model';

const USAGE = `Usage: llava serve --model DIR [options]

${MODEL_USAGE}
  --host H                              address to bind (default 127.0.0.1: this machine only)
  --port N                              port (default 8000; 0 picks a free one)
  --api-key KEY                         require "Authorization: Bearer KEY" (or set LLAVA_API_KEY)
  --model-name NAME                     the model id clients send (default: the folder's name)
  --allow-remote-images                 let requests name http(s) image URLs (fetched by this server)
  --allow-files DIR                     let requests name image files under DIR (file:// URLs or absolute paths)
  --max-batch N                         requests decoded together (default 4)
  --max-queue N                         requests waiting before a 429 (default 64)
  --max-tokens N                        the most new tokens a request may ask for (default 1024)
  --max-body-mb N --max-image-mb N      request and image size limits (default 32 and 20)

Endpoints: POST /v1/chat/completions (stream or not), GET /v1/models, GET /health.
`;

async function run(args: string[]): Promise<number> {
  const { values } = parse(
    args,
    {
      ...MODEL_OPTIONS,
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '8000' },
      'api-key': { type: 'string' },
      'model-name': { type: 'string' },
      'allow-remote-images': { type: 'boolean', default: false },
      'allow-files': { type: 'string' },
      'max-batch': { type: 'string' },
      'max-queue': { type: 'string' },
      'max-tokens': { type: 'string' },
      'max-body-mb': { type: 'string' },
      'max-image-mb': { type: 'string' },
    },
    USAGE,
  );
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (!values.model) throw new UsageError('--model DIR is required', USAGE);
  const port = int('port', values.port, 0, USAGE)!;
  if (port > 65535) throw new UsageError('--port must be at most 65535', USAGE);
  const allowFiles = values['allow-files'] ? path.resolve(values['allow-files']) : undefined;
  if (allowFiles && !(await stat(allowFiles).catch(() => undefined))?.isDirectory()) throw new Error(`${allowFiles}: --allow-files must name a folder`);
  const apiKey = values['api-key'] ?? (process.env.LLAVA_API_KEY || undefined);
  const mb = (name: string, v: string | undefined) => (int(name, v, 1, USAGE) ?? 0) * 1024 * 1024 || undefined;
  const log = (line: string) => process.stderr.write(`[llava serve] ${line}\n`);
  if (!['127.0.0.1', 'localhost', '::1'].includes(values.host!) && !apiKey) {
    log(`warning: listening on ${values.host} without --api-key: anyone who can reach this port can use the model`);
  }

  const model = await openModel(values, USAGE);
  const server = await startServer({
    model,
    modelName: values['model-name'] ?? path.basename(path.resolve(values.model)),
    host: values.host,
    port,
    apiKey,
    allowFilesDir: allowFiles,
    allowRemoteImages: values['allow-remote-images'],
    maxBatch: int('max-batch', values['max-batch'], 1, USAGE),
    maxQueue: int('max-queue', values['max-queue'], 1, USAGE),
    maxTokens: int('max-tokens', values['max-tokens'], 1, USAGE),
    maxBodyBytes: mb('max-body-mb', values['max-body-mb']),
    maxImageBytes: mb('max-image-mb', values['max-image-mb']),
    log,
  }).catch(async (err: Error) => {
    await model.dispose();
    throw new Error(`could not listen on ${values.host}:${port}: ${err.message}`);
  });
  // one line on stdout that scripts (and the tests) read for the address
  process.stdout.write(`llava serve: listening on ${server.url} (model ${model.info.provider}, ${path.basename(model.info.dir)})\n`);

  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log(`${signal}: finishing running requests, then exiting`);
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  await server.close();
  await model.dispose();
  log('stopped');
  return 0;
}

export const serveCommand: CliCommand = { name: 'serve', summary: 'serve the model over an OpenAI-compatible HTTP API', usage: USAGE, run };
