// Ids for conversations, messages and images. No vscode import: the plain-Node tests use it too.

let counter = 0;
/** unique within this extension host run; random part survives reloads without collisions */
export function newId(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${(counter++).toString(36)}-${Math.random().toString(36).slice(2, 6)}`;
}
