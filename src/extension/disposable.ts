// The Disposable base used by panels and the Ctx (the vscode-extension-samples pattern): children
// registered with _register are disposed with their owner, in reverse order, exactly once.

import type * as vscode from 'vscode';

export abstract class Disposable implements vscode.Disposable {
  private _disposables: vscode.Disposable[] = [];
  protected _isDisposed = false;

  dispose(): void {
    if (this._isDisposed) return;
    this._isDisposed = true;
    disposeAll(this._disposables);
  }

  protected _register<T extends vscode.Disposable>(d: T): T {
    if (this._isDisposed) d.dispose();
    else this._disposables.push(d);
    return d;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }
}

export function disposeAll(list: vscode.Disposable[]): void {
  while (list.length) {
    try {
      list.pop()?.dispose();
    } catch {
      // one failing dispose must not keep the others alive
    }
  }
}
