// `llava.manageModels`: the models downloaded under the models folder, each with its size on disk,
// the variant chosen per part and the commit it came from; actions: use, delete, reveal folder.

import * as vscode from 'vscode';
import { rm } from 'node:fs/promises';
import { formatBytes, formatModelSetting, findCatalogEntry, type DownloadedModel } from '../../hub';
import { formatVariantChoice } from '../../core';
import type { ModelStore } from '../modelStore';

type ModelItem = vscode.QuickPickItem & { model: DownloadedModel };
type Action = vscode.QuickPickItem & { action: 'use' | 'delete' | 'reveal' };

export async function manageModels(store: ModelStore): Promise<void> {
  const models = await store.downloaded();
  if (!models.length) {
    const download = 'Download Model…';
    const choice = await vscode.window.showInformationMessage(`No models downloaded in ${store.modelsRoot()} yet.`, download);
    if (choice === download) await vscode.commands.executeCommand('llava.downloadModel');
    return;
  }
  const cur = await store.current();
  const items: ModelItem[] = models.map((m) => {
    const isCurrent = cur.kind === 'hub' && cur.folder === m.folder;
    return {
      label: `${isCurrent ? '$(pass-filled)' : m.complete ? '$(check)' : '$(warning)'} ${m.manifest.label ?? m.manifest.repo}`,
      description: [formatBytes(m.sizeOnDisk), m.complete ? undefined : 'incomplete', isCurrent ? 'active' : undefined].filter(Boolean).join(' · '),
      detail: [
        m.manifest.variants ? formatVariantChoice(m.manifest.variants) : 'variants unknown',
        m.manifest.commit ? `commit ${m.manifest.commit.slice(0, 7)}` : `revision ${m.manifest.revision}`,
        m.manifest.repo,
      ].join(' · '),
      model: m,
    };
  });
  const pick = await vscode.window.showQuickPick(items, {
    title: 'Manage Models',
    placeHolder: `Downloaded models in ${store.modelsRoot()}`,
    matchOnDescription: true,
    matchOnDetail: true,
  });
  if (!pick) return;
  const { model } = pick;
  const actions: Action[] = [
    { label: '$(play) Use', detail: 'Answer with this model (saved in llava.model)', action: 'use' },
    { label: '$(folder-opened) Reveal Folder', detail: model.folder, action: 'reveal' },
    { label: '$(trash) Delete', detail: `Frees ${formatBytes(model.sizeOnDisk)}`, action: 'delete' },
  ];
  const act = await vscode.window.showQuickPick(actions, { title: pick.label.replace(/^\$\([\w-]+\) /, '') });
  if (!act) return;
  switch (act.action) {
    case 'use': {
      const entry = findCatalogEntry(store.catalog(), model.manifest.repo);
      await store.setModelSetting(formatModelSetting({ entry, repo: model.manifest.repo }));
      return;
    }
    case 'reveal':
      await vscode.commands.executeCommand('revealFileInOS', vscode.Uri.file(model.folder));
      return;
    case 'delete': {
      const sure = await vscode.window.showWarningMessage(
        `Delete ${model.manifest.label ?? model.manifest.repo} (${formatBytes(model.sizeOnDisk)})?`,
        { modal: true, detail: model.folder },
        'Delete',
      );
      if (sure !== 'Delete') return;
      await rm(model.folder, { recursive: true, force: true });
      store.log.info(`[models] deleted ${model.folder}`);
      return;
    }
  }
}
