// Module boundaries from docs/ARCHITECTURE.md, checked on the source text: the engine runs in plain Node
// (engine process, CLI, tests), so nothing under src/engine may reach `vscode`; webview code is a browser
// bundle and may take only types from the host side.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';

const ROOT = path.join(__dirname, '..', '..');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

const importsOf = (file: string) =>
  [...readFileSync(file, 'utf8').matchAll(/^\s*(import|export)\s+(type\s+)?[^;]*?from\s+['"]([^'"]+)['"]/gm)].map((m) => ({ typeOnly: !!m[2], spec: m[3] }));

test('src/engine never imports vscode (directly or through a host module)', () => {
  const engineFiles = files(path.join(ROOT, 'src', 'engine'));
  assert.ok(engineFiles.length > 10);
  for (const file of engineFiles) {
    for (const { spec } of importsOf(file)) {
      assert.notEqual(spec, 'vscode', `${path.relative(ROOT, file)} imports vscode`);
      if (spec.startsWith('.')) {
        const target = path.resolve(path.dirname(file), spec);
        // data files (the model catalog) are fine; code outside src/engine is not
        const isData = spec.endsWith('.json');
        assert.ok(isData || target.startsWith(path.join(ROOT, 'src', 'engine')), `${path.relative(ROOT, file)} imports ${spec}, outside src/engine`);
      }
    }
  }
});

test('webview code takes only types from src/, except the dependency-free protocol module', () => {
  for (const file of files(path.join(ROOT, 'webview'))) {
    for (const { typeOnly, spec } of importsOf(file)) {
      assert.notEqual(spec, 'vscode', `${path.relative(ROOT, file)} imports vscode`);
      if (spec.includes('/src/') && !spec.endsWith('/src/protocol')) assert.ok(typeOnly, `${path.relative(ROOT, file)} imports values from ${spec}; use import type`);
    }
  }
  // protocol.ts is bundled into the browser: it may not pull in anything at run time.
  const protocolImports = importsOf(path.join(ROOT, 'src', 'protocol.ts'));
  for (const { typeOnly, spec } of protocolImports) assert.ok(typeOnly, `src/protocol.ts imports ${spec} at run time`);
});
