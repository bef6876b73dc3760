// `llava.downloadModel`: pick a catalog model (or type any Hub repo), ask the Hub what it holds,
// show the offer (model, licence, exact size, the variant chosen per part), download it with
// progress, offer to use it.

import * as path from 'node:path';
import * as vscode from 'vscode';
import { formatModelSetting, resolveHubModel, type CatalogEntry, type ConversionEntry, type ResolvedHubModel } from '../../hub';
import { EngineError } from '../../core';
import type { ModelStore } from '../modelStore';
import { conversionSummary, convertModelCommand } from './convertModel';

type Item = vscode.QuickPickItem & { entry?: CatalogEntry; conversion?: ConversionEntry; other?: true };

/** Returns the downloaded folder, or undefined when the user cancelled or the download failed. */
export async function downloadModelCommand(store: ModelStore): Promise<string | undefined> {
  const picked = await pickModel(store);
  if (!picked) return undefined;
  if ('conversion' in picked) return convertModelCommand(store, picked.conversion);
  const model = picked;

  let offered;
  try {
    offered = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Asking the Hub what ${model.entry?.label ?? model.repo} holds…` },
      () => store.offer(model),
    );
  } catch (err) {
    const msg = err instanceof EngineError ? `${err.message} [${err.code}]` : String((err as Error).message ?? err);
    void vscode.window.showErrorMessage(`Could not list ${model.repo} on the Hub: ${msg}`);
    return undefined;
  }
  const { plan, offer } = offered;
  const go = await vscode.window.showInformationMessage(offer.question, { modal: true, detail: `${offer.detail}\nInto ${path.dirname(model.folder)}` }, 'Download');
  if (go !== 'Download') return undefined;

  const folder = await store.download(plan);
  if (!folder) return undefined;

  const value = formatModelSetting(model, model.choice);
  const cur = await store.current();
  if (cur.kind === 'hub' && cur.folder === folder) {
    void vscode.window.showInformationMessage(`${plan.label} is downloaded and is the current model.`);
  } else {
    const use = 'Use this model';
    const choice = await vscode.window.showInformationMessage(`${plan.label} is downloaded.`, use);
    if (choice === use) await store.setModelSetting(value);
  }
  return folder;
}

/** One item per catalog model (licence, downloaded or not), the conversions with their sizes, then "Other Hub repository…". */
async function pickModel(store: ModelStore): Promise<ResolvedHubModel | { conversion: ConversionEntry } | undefined> {
  const root = store.modelsRoot();
  const items: Item[] = [];
  for (const entry of store.catalog().models) {
    const resolved = resolveHubModel(store.catalog(), { name: entry.id }, root) as ResolvedHubModel;
    const downloaded = await store.isDownloaded(resolved).catch(() => false);
    items.push({
      label: `${downloaded ? '$(check)' : '$(cloud-download)'} ${entry.label}`,
      description: [entry.repo, downloaded ? 'downloaded' : undefined].filter(Boolean).join(' · '),
      detail: [entry.description, `licence ${entry.licence}`].filter(Boolean).join(' · '),
      entry,
    });
  }
  const conversions = store.catalog().conversions;
  if (conversions.length) items.push({ label: 'Convert from a checkpoint', kind: vscode.QuickPickItemKind.Separator });
  for (const conversion of conversions) {
    items.push({
      label: `$(sync) ${conversion.label}`,
      description: conversionSummary(conversion),
      detail: [conversion.description, `licence ${conversion.licence}`].filter(Boolean).join(' · '),
      conversion,
    });
  }
  items.push({ label: '', kind: vscode.QuickPickItemKind.Separator });
  items.push({ label: '$(repo) Other Hub repository…', detail: 'owner/name of a transformers.js LLaVA export', other: true });
  const pick = await vscode.window.showQuickPick(items, {
    title: 'Download Model',
    placeHolder: 'Choose a model: the files for each part are chosen from what the repository holds',
    matchOnDescription: true,
    matchOnDetail: true,
  });
  if (!pick) return undefined;
  if (pick.conversion) return { conversion: pick.conversion };
  let name = pick.entry?.id;
  if (pick.other) {
    name = await vscode.window.showInputBox({
      title: 'Hub repository',
      prompt: 'owner/name, optionally :variants (for example onnx-community/nanoLLaVA-1.5:vision=fp16,decoder=q4)',
      validateInput: (v) => {
        const r = resolveHubModel(store.catalog(), splitVariant(v), root);
        return 'error' in r ? r.error : undefined;
      },
    });
  }
  if (!name) return undefined;
  const r = resolveHubModel(store.catalog(), splitVariant(name), root);
  return 'error' in r ? undefined : r;
}

function splitVariant(v: string): { name: string; variant?: string } {
  const t = v.trim();
  const colon = t.lastIndexOf(':');
  return colon > 0 ? { name: t.slice(0, colon), variant: t.slice(colon + 1) } : { name: t };
}
