// `llava.selectModel`: choose which model answers — the built-in demo model (when this package has
// one), a catalog model (downloaded or not), a local folder used before, a new local folder, or a
// download — and write it to `llava.model`.

import * as path from 'node:path';
import * as vscode from 'vscode';
import type { CatalogEntry, ConversionEntry, ResolvedHubModel } from '../../hub';
import { BUILTIN_MODEL_DESCRIPTION, BUILTIN_MODEL_LABEL, checkLocalModelFolder, formatModelSetting, resolveHubModel } from '../../hub';
import { describeVariants, formatVariantChoice } from '../../core';
import type { ModelStore } from '../modelStore';
import { downloadModelCommand } from './downloadModel';
import { conversionSummary, convertModelCommand } from './convertModel';

type Item = vscode.QuickPickItem &
  (
    | { action: 'builtin' }
    | { action: 'catalog'; entry: CatalogEntry; model: ResolvedHubModel; downloaded: boolean }
    | { action: 'convert'; conversion: ConversionEntry; folder: string; converted: boolean }
    | { action: 'folder'; folder: string }
    | { action: 'pickFolder' }
    | { action: 'download' }
    | { action: 'separator' }
  );

export async function selectModel(store: ModelStore): Promise<void> {
  const pick = await vscode.window.showQuickPick(buildItems(store), {
    title: 'Select Model',
    placeHolder: 'The model LLaVA answers with (saved in the llava.model setting)',
    matchOnDescription: true,
    matchOnDetail: true,
  });
  if (!pick) return;

  switch (pick.action) {
    case 'builtin':
      if (!(await store.useBuiltin())) void vscode.window.showErrorMessage(`This copy of the extension does not include the ${BUILTIN_MODEL_LABEL}.`);
      return;
    case 'catalog': {
      await store.setModelSetting(formatModelSetting(pick.model, pick.model.choice));
      if (!pick.downloaded) {
        const download = 'Download…';
        const choice = await vscode.window.showInformationMessage(`${pick.entry.label} is selected but not downloaded yet.`, download);
        if (choice === download) {
          const { plan, offer } = await store.offer(pick.model);
          const go = await vscode.window.showInformationMessage(offer.question, { modal: true, detail: offer.detail }, 'Download');
          if (go === 'Download') await store.download(plan);
        }
      }
      return;
    }
    case 'convert':
      // converted already: use it; otherwise the sizes are shown and confirmed before anything is fetched
      if (pick.converted) await store.useLocalFolder(pick.folder);
      else await convertModelCommand(store, pick.conversion);
      return;
    case 'folder': {
      const problem = await checkLocalModelFolder(pick.folder);
      if (problem) {
        void vscode.window.showErrorMessage(problem);
        return;
      }
      await store.useLocalFolder(pick.folder);
      return;
    }
    case 'pickFolder':
      await store.pickLocalFolder();
      return;
    case 'download':
      await downloadModelCommand(store);
      return;
  }
}

async function buildItems(store: ModelStore): Promise<Item[]> {
  const cur = await store.current();
  const items: Item[] = [];
  // only when this package carries it: a choice that cannot work is not offered
  if (await store.builtinModel()) {
    items.push({ label: 'Included with the extension', kind: vscode.QuickPickItemKind.Separator, action: 'separator' });
    items.push({
      label: `$(package) ${BUILTIN_MODEL_LABEL}`,
      description: [BUILTIN_MODEL_DESCRIPTION, cur.kind === 'builtin' ? 'current' : undefined].filter(Boolean).join(' · '),
      action: 'builtin',
    });
  }
  items.push({ label: 'Catalog', kind: vscode.QuickPickItemKind.Separator, action: 'separator' });

  for (const entry of store.catalog().models) {
    // the current model keeps its pinned variants; the others are chosen from what exists
    const isCurrent = cur.kind === 'hub' && cur.model.entry?.id === entry.id;
    const model = isCurrent ? cur.model : (resolveHubModel(store.catalog(), { name: entry.id }, store.modelsRoot()) as ResolvedHubModel);
    const downloaded = await store.isDownloaded(model).catch(() => false);
    const manifest = isCurrent ? cur.manifest : undefined;
    items.push({
      label: `${downloaded ? '$(check)' : '$(cloud-download)'} ${entry.label}`,
      description: [
        manifest?.variants ? describeVariants(manifest.variants) : model.choice ? formatVariantChoice(model.choice) : undefined,
        downloaded ? 'downloaded' : 'not downloaded',
        isCurrent ? 'current' : undefined,
      ]
        .filter(Boolean)
        .join(' · '),
      detail: [entry.description, `licence ${entry.licence}`].filter(Boolean).join(' · '),
      action: 'catalog',
      entry,
      model,
      downloaded,
    });
  }

  const conversions = store.catalog().conversions;
  if (conversions.length) items.push({ label: 'Convert from a checkpoint', kind: vscode.QuickPickItemKind.Separator, action: 'separator' });
  for (const conversion of conversions) {
    const folder = path.join(store.modelsRoot(), conversion.id);
    const converted = (await checkLocalModelFolder(folder).catch(() => 'unreadable')) === undefined;
    const isCurrent = cur.kind === 'folder' && cur.path === folder;
    items.push({
      label: `${converted ? '$(check)' : '$(sync)'} ${conversion.label}`,
      description: [converted ? 'converted' : conversionSummary(conversion), isCurrent ? 'current' : undefined].filter(Boolean).join(' · '),
      detail: [conversion.description, `licence ${conversion.licence}`].filter(Boolean).join(' · '),
      action: 'convert',
      conversion,
      folder,
      converted,
    });
  }

  const folders = store.recentFolders();
  if (cur.kind === 'folder' && !folders.includes(cur.path)) folders.unshift(cur.path);
  if (folders.length) {
    items.push({ label: 'Local folders', kind: vscode.QuickPickItemKind.Separator, action: 'separator' });
    for (const folder of folders) {
      const isCurrent = cur.kind === 'folder' && cur.path === folder;
      items.push({
        label: `$(folder) ${path.basename(folder)}`,
        description: isCurrent ? 'current' : undefined,
        detail: folder,
        action: 'folder',
        folder,
      });
    }
  }

  items.push({ label: '', kind: vscode.QuickPickItemKind.Separator, action: 'separator' });
  items.push({ label: '$(folder-opened) Use Local Folder…', detail: 'A folder in the Hub layout: config.json and onnx/*.onnx', action: 'pickFolder' });
  items.push({ label: '$(cloud-download) Download…', detail: 'Choose a catalog model or a Hub repository to download', action: 'download' });
  return items;
}
