// `llava eval` end to end on the random-weight tiny fixture: the pipeline runs over the committed
// held-out set (tables on stdout, the JSON report with every answer), the counts per task and
// category are the data's, and usage mistakes are one line. Accuracy near chance is expected and
// not asserted: these weights are random.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadScienceQa } from '../../src/eval';
import { ensureFixtures } from '../fixtures/index';

const ROOT = path.join(__dirname, '..', '..');
const HELDOUT = path.join(ROOT, 'test', 'data', 'heldout');

function llava(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/index.ts'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

describe('llava eval', () => {
  let modelDir: string;
  let tmp: string;
  before(async () => {
    [modelDir] = await ensureFixtures(['tiny-llava']);
    tmp = mkdtempSync(path.join(os.tmpdir(), 'llava-evalcli-'));
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  test('runs every task on the held-out set and reports tables and JSON', async () => {
    const json = path.join(tmp, 'report.json');
    const limit = 12;
    const r = await llava(['eval', '--model', modelDir, '--data', HELDOUT, '--provider', 'cpu', '--threads', '1', '--limit', String(limit), '--json', json]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /ScienceQA-format multiple choice/);
    assert.match(r.stdout, /Short answer, normalised exact match/);
    assert.match(r.stdout, /Grounding \(/);
    assert.doesNotMatch(r.stdout, /Judged/);
    const report = JSON.parse(readFileSync(json, 'utf8'));
    assert.equal(report.model, modelDir);
    // counts per category are the data's (the first `limit` problems)
    const mc = (await loadScienceQa(HELDOUT, 'test')).slice(0, limit);
    for (const cat of new Set(mc.map((m) => m.category))) {
      const row = report.scienceqa.rows.find((x: { group: string }) => x.group === `category ${cat}`);
      assert.equal(row.n, mc.filter((m) => m.category === cat).length, cat);
      assert.match(r.stdout, new RegExp(`category ${cat}\\s+${row.n}\\s+${row.correct}\\s+${row.accuracy.toFixed(2)}`));
    }
    assert.equal(report.scienceqa.items.length, limit);
    assert.equal(report.short.items.length, limit);
    assert.equal(report.grounding.items.length, limit);
    assert.equal(report.scienceqa.errors + report.short.errors + report.grounding.errors, 0, 'every image decodes and every question is answered');
    for (const it of report.scienceqa.items) assert.equal(it.correct, it.predicted === it.truth);
    for (const it of report.grounding.items) if (!it.box) assert.equal(it.iou, 0);
  });

  test('the judged task through a judge endpoint (fake, 127.0.0.1)', async () => {
    let requests = 0;
    const server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        requests++;
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ choices: [{ message: { role: 'assistant', content: '9 3\nThe model answer is noise.' } }] }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const json = path.join(tmp, 'judged.json');
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
      const r = await llava(['eval', '--model', modelDir, '--data', HELDOUT, '--provider', 'cpu', '--threads', '1', '--tasks', 'judged', '--limit', '3', '--max-new-tokens', '8', '--judge-url', url, '--json', json]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(requests, 3);
      assert.match(r.stdout, /Judged relative score[\s\S]*all\s+3\s+9\.00\s+3\.00\s+33\.33/);
      const report = JSON.parse(readFileSync(json, 'utf8'));
      assert.equal(report.judged.items.length, 3);
      assert.equal(report.scienceqa, undefined, 'only the task asked for');
    } finally {
      server.close();
    }
  });

  test('usage mistakes are one line and the usage', async () => {
    const r = await llava(['eval', '--model', modelDir, '--data', HELDOUT, '--tasks', 'scienceqa,bogus']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^llava: unknown task bogus/);
    const j = await llava(['eval', '--model', modelDir, '--data', HELDOUT, '--tasks', 'judged']);
    assert.equal(j.code, 2);
    assert.match(j.stderr, /^llava: the judged task needs --judge-url/);
    const d = await llava(['eval', '--model', modelDir, '--data', path.join(tmp, 'nope')]);
    assert.equal(d.code, 1);
    assert.match(d.stderr, /nope: not a folder/);
  });
});
