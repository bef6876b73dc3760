// Thin helpers over onnxruntime-node sessions: create with a readable error, and read the names,
// dtypes and fixed dims from the session's own metadata rather than assuming them.

import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { ModelLoadError } from '../core';
import { graphOnly, lastPositionLogits } from './onnxView';

export type Session = ort.InferenceSession;

/**
 * 'lastPosition' (a decoder): where the file keeps its weights in external data, its graph is loaded edited so
 * that the logits are computed for the last position only (onnxView.ts); a file with inline weights, or a graph
 * the edit does not recognise, is loaded as it is. `log` says why an edit that was expected failed.
 */
export type SessionView = 'file' | 'lastPosition';

export async function createSession(file: string, options: ort.InferenceSession.SessionOptions, view: SessionView = 'file', log?: (line: string) => void): Promise<Session> {
  if (view === 'lastPosition') {
    try {
      const g = graphOnly(file);
      const model = g && lastPositionLogits(g.model);
      if (g && model) {
        const extra = (options.extra ?? {}) as { session?: Record<string, unknown> };
        return await ort.InferenceSession.create(model, {
          ...options,
          extra: { ...extra, session: { ...extra.session, model_external_initializers_file_folder_path: g.folder } },
        });
      }
    } catch (err) {
      log?.(`${path.basename(file)}: loaded without the last-position edit (${err instanceof Error ? err.message : String(err)})`);
    }
  }
  try {
    return await ort.InferenceSession.create(file, options);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new ModelLoadError(`ONNX Runtime could not load ${file}: ${message}`, { cause: err });
  }
}

export interface TensorInfo {
  name: string;
  type: ort.Tensor.Type;
  shape: ReadonlyArray<number | string>;
}

export function inputInfo(session: Session, name: string): TensorInfo | undefined {
  const meta = session.inputMetadata.find((m) => m.name === name);
  return meta && meta.isTensor ? { name, type: meta.type, shape: meta.shape } : undefined;
}

export function outputInfo(session: Session, name: string): TensorInfo | undefined {
  const meta = session.outputMetadata.find((m) => m.name === name);
  return meta && meta.isTensor ? { name, type: meta.type, shape: meta.shape } : undefined;
}

/** The dim if the graph fixes it to a number, else undefined (symbolic or unknown). */
export function fixedDim(info: TensorInfo | undefined, axis: number): number | undefined {
  const d = info?.shape[axis];
  return typeof d === 'number' && d > 0 ? d : undefined;
}

export function requireInput(session: Session, file: string, name: string): TensorInfo {
  const info = inputInfo(session, name);
  if (!info) throw new ModelLoadError(`${file}: expected an input named "${name}"; the graph has ${session.inputNames.join(', ')}`);
  return info;
}

export function requireOutput(session: Session, file: string, name: string): TensorInfo {
  const info = outputInfo(session, name);
  if (!info) throw new ModelLoadError(`${file}: expected an output named "${name}"; the graph has ${session.outputNames.join(', ')}`);
  return info;
}

export async function releaseAll(sessions: Array<Session | undefined>): Promise<void> {
  await Promise.all(sessions.map((s) => s?.release().catch(() => {})));
}
