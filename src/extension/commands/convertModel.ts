// A catalog entry of kind "convert" (e.g. LLaVA-1.5-7B from llava-hf/llava-1.5-7b-hf): ask the Hub
// what the checkpoint holds, show the sizes (download, disk after conversion in the dtype chosen for
// the execution provider, memory to run, licence) in a modal, download the checkpoint with the hub's
// downloader, convert it in a child process (`dist/cli.js convert --progress json`, VS Code's Node)
// under a cancellable progress notification with an ETA, and point `llava.model` at the result.
// The host never loads the converter: src/convert-process spawns it.

import { rm } from 'node:fs/promises';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { AbortedError, EngineError } from '../../core';
import { ConvertProcessError, describeConvertFailure, formatEta, runConvert } from '../../convert-process';
import { conversionDtype, conversionOffer, diskSpaceProblem, formatBytes, listRepo, planCheckpointDownload, type ConversionEntry } from '../../hub';
import { config } from '../config';
import type { ModelStore } from '../modelStore';

const CONFIRM = 'Download and Convert';

/** The provider the conversion is sized for: a GPU setting gets the GPU dtype, anything else (auto, cpu) the CPU one. */
function targetProvider(): 'cpu' | 'gpu' {
  const p = config.executionProvider();
  return p === 'auto' || p === 'cpu' ? 'cpu' : 'gpu';
}

/** Quick-pick description for a conversion entry: its sizes in the dtype this machine would get. */
export function conversionSummary(entry: ConversionEntry): string {
  return conversionOffer(entry, conversionDtype(entry, targetProvider())).summary;
}

/** Returns the converted folder, or undefined when the user declined, cancelled, or it failed (said in words). */
export async function convertModelCommand(store: ModelStore, entry: ConversionEntry): Promise<string | undefined> {
  const dtype = conversionDtype(entry, targetProvider());
  let plan;
  try {
    const listing = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Asking the Hub what ${entry.repo} holds…` },
      () => listRepo(entry.repo, entry.revision, { envProxy: false }),
    );
    plan = planCheckpointDownload(listing, entry, dtype);
  } catch (err) {
    const msg = err instanceof EngineError ? `${err.message} [${err.code}]` : String((err as Error).message ?? err);
    store.log.error(`[convert] listing ${entry.repo}: ${msg}`);
    void vscode.window.showErrorMessage(`Could not list ${entry.repo} on the Hub: ${msg}`);
    return undefined;
  }
  const offer = conversionOffer(entry, dtype, plan);
  // the download's own check, shown before the user confirms (the converter checks its output's space again before writing)
  const space = await diskSpaceProblem(plan, store.modelsRoot()).catch(() => undefined);
  const detail = [space ? `Warning: ${space.message}` : undefined, offer.detail, `Into ${store.modelsRoot()}`].filter(Boolean).join('\n');
  const go = await vscode.window.showWarningMessage(offer.question, { modal: true, detail }, CONFIRM);
  if (go !== CONFIRM) return undefined;

  const checkpoint = await store.download(plan); // says why in words when it fails; keeps .part files on cancel
  if (!checkpoint) return undefined;
  const out = path.join(store.modelsRoot(), entry.id);
  const label = entry.label.replace(/\s*\(.*\)\s*$/, '');
  try {
    await convertWithProgress(store, { label, from: checkpoint, out, dtype });
  } catch (err) {
    if (err instanceof ConvertProcessError && err.log) store.log.error(`[convert] converter output:\n${err.log}`);
    const text = describeConvertFailure(err, label);
    if (err instanceof AbortedError) {
      store.log.info(`[convert] ${text}`);
      void vscode.window.showInformationMessage(text);
      return undefined;
    }
    store.log.error(`[convert] ${text}`);
    const retry = 'Convert Again';
    const choice = await vscode.window.showErrorMessage(text, retry, 'Show Log');
    if (choice === 'Show Log') store.log.show(true);
    if (choice === retry) return convertModelCommand(store, entry);
    return undefined;
  }
  await store.useLocalFolder(out);
  void offerToDeleteCheckpoint(store, label, dtype, out, checkpoint, offer.downloadBytes);
  return out;
}

/** The checkpoint is only needed to convert again (another dtype, a rerun): the user may take its space back. */
async function offerToDeleteCheckpoint(store: ModelStore, label: string, dtype: string, out: string, checkpoint: string, bytes: number): Promise<void> {
  const remove = `Delete the Checkpoint (${formatBytes(bytes)})`;
  const choice = await vscode.window.showInformationMessage(`${label} is converted (${dtype}, ${out}) and is now the current model.`, remove);
  if (choice !== remove) return;
  try {
    await rm(checkpoint, { recursive: true, force: true });
    store.log.info(`[convert] deleted the checkpoint ${checkpoint}`);
  } catch (err) {
    void vscode.window.showErrorMessage(`Could not delete ${checkpoint}: ${(err as Error).message}`);
  }
}

async function convertWithProgress(store: ModelStore, job: { label: string; from: string; out: string; dtype: string }): Promise<void> {
  store.log.info(`[convert] ${job.from} -> ${job.out} (${job.dtype}) in a child process`);
  await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `Converting ${job.label} (${job.dtype})`, cancellable: true },
    async (progress, token) => {
      const abort = new AbortController();
      const sub = token.onCancellationRequested(() => abort.abort());
      let shown = 0;
      try {
        const done = await runConvert({
          cliPath: store.cliPath(),
          from: job.from,
          out: job.out,
          dtype: job.dtype,
          signal: abort.signal,
          onLog: (line) => store.log.debug(`[convert] ${line}`),
          onProgress: (p) => {
            const percent = (100 * p.bytesRead) / Math.max(1, p.bytesTotal);
            const increment = Math.max(0, percent - shown);
            shown += increment;
            progress.report({
              increment,
              message: `${Math.floor(percent)}% · part ${p.partIndex + 1} of ${p.partCount} (${path.posix.basename(p.part)}) · ${formatEta(p.etaS)} · ${formatBytes(p.bytesRead)} of ${formatBytes(p.bytesTotal)} read`,
            });
          },
        });
        store.log.info(`[convert] done in ${done.seconds} s: ${done.written} part(s) written, ${done.skipped} already done`);
      } finally {
        sub.dispose();
      }
    },
  );
}
