// `llava.downloadModel`: pick a catalog model and variant, download it with progress, offer to use it.

import * as vscode from 'vscode';
import type { CatalogEntry } from '../../hub';
import { formatModelSetting, formatSize, variantSizeBytes } from '../../hub';
import type { ModelStore } from '../modelStore';

interface VariantItem extends vscode.QuickPickItem {
  entry: CatalogEntry;
  variant: string;
}
/** separators carry no entry */
type Item = VariantItem | (vscode.QuickPickItem & { entry?: undefined; variant?: undefined });

/** Returns the downloaded folder, or undefined when the user cancelled or the download failed. */
export async function downloadModelCommand(store: ModelStore): Promise<string | undefined> {
  const pick = await vscode.window.showQuickPick(variantItems(store), {
    title: 'Download Model',
    placeHolder: 'Choose a model and variant (q4 and int8 suit the CPU; fp16 and q4f16 suit a GPU)',
    matchOnDescription: true,
    matchOnDetail: true,
  });
  if (!pick?.entry) return undefined;

  const folder = await store.download(pick.entry, pick.variant);
  if (!folder) return undefined;

  const value = formatModelSetting(pick.entry, pick.variant);
  const cur = await store.current();
  const alreadyCurrent = cur.kind === 'catalog' && cur.entry.id === pick.entry.id && cur.variant === pick.variant;
  if (alreadyCurrent) {
    void vscode.window.showInformationMessage(`${pick.entry.label} (${pick.variant}) is downloaded and is the current model.`);
  } else {
    const use = 'Use this model';
    const choice = await vscode.window.showInformationMessage(`${pick.entry.label} (${pick.variant}) is downloaded.`, use);
    if (choice === use) await store.setModelSetting(value);
  }
  return folder;
}

/** One separator per catalog model, then one item per variant: size, licence, default, on disk. */
async function variantItems(store: ModelStore): Promise<Item[]> {
  const items: Item[] = [];
  for (const entry of store.catalog().models) {
    items.push({ label: entry.label, kind: vscode.QuickPickItemKind.Separator });
    for (const [variant, v] of Object.entries(entry.variants)) {
      const downloaded = await store.isDownloaded(entry, variant).catch(() => false);
      const marks = [
        formatSize(variantSizeBytes(entry, variant)),
        variant === entry.defaultVariant ? 'default' : undefined,
        downloaded ? 'downloaded' : undefined,
      ].filter(Boolean);
      items.push({
        label: `${downloaded ? '$(check)' : '$(cloud-download)'} ${entry.label}: ${variant}`,
        description: marks.join(' · '),
        detail: [v.description, `licence ${entry.licence}`, entry.repo].filter(Boolean).join(' · '),
        entry,
        variant,
      } satisfies VariantItem);
    }
  }
  return items;
}
