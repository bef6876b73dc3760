// What the chat shows when there is nothing yet (what to do, with buttons), and the button that brings
// back a cleared conversation.

import { el } from './imageView';

export function createEmptyState(surface: 'panel' | 'view', actions: { openImage(): void; getStarted(): void }): HTMLElement {
  const section = el('section', 'empty-state');
  section.dataset.testid = 'empty-state';
  section.setAttribute('aria-label', 'Getting started');
  const title = el('p', 'empty-title');
  title.textContent = 'Open an image or drop one here';
  const hint = el('p', 'empty-hint');
  hint.textContent =
    surface === 'view'
      ? 'Open an image in the editor and this chat follows it; or attach one, paste a screenshot, or Shift+drop files from the Explorer. Then ask a question below.'
      : 'Attach an image, paste a screenshot, or Shift+drop files from the Explorer. Then ask a question below.';
  const open = document.createElement('vscode-button');
  open.textContent = 'Open Image…';
  open.setAttribute('icon', 'file-media');
  open.dataset.testid = 'empty-open-image';
  open.addEventListener('click', () => actions.openImage());
  const start = document.createElement('vscode-button');
  start.textContent = 'Get Started';
  start.setAttribute('secondary', '');
  start.addEventListener('click', () => actions.getStarted());
  const row = el('div', 'empty-buttons');
  row.append(open, start);
  section.append(title, hint, row);
  return section;
}

/** "Undo Clear": hidden until the host says a cleared conversation can come back. */
export function createUndoClear(onUndo: () => void): HTMLElement {
  const undo = document.createElement('vscode-button');
  undo.dataset.testid = 'undo-clear';
  undo.textContent = 'Undo Clear';
  undo.setAttribute('secondary', '');
  undo.setAttribute('icon', 'discard');
  undo.hidden = true;
  undo.addEventListener('click', () => {
    undo.hidden = true;
    onUndo();
  });
  return undo;
}
