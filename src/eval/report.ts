// The evaluation report as plain-text tables for the terminal (the JSON is the report object itself).

import type { AccuracyRow, EvalReport } from './run';

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const line = (cells: string[]) => cells.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

const pct = (v: number) => v.toFixed(2);

function accuracyTable(rows: readonly AccuracyRow[]): string {
  return table(['group', 'n', 'correct', 'accuracy %'], rows.map((r) => [r.group, String(r.n), String(r.correct), pct(r.accuracy)]));
}

export function formatReport(r: EvalReport): string {
  const parts: string[] = [];
  if (r.scienceqa) {
    parts.push(`ScienceQA-format multiple choice (${r.scienceqa.unparsed} answers named no option, ${r.scienceqa.errors} failed)\n${accuracyTable(r.scienceqa.rows)}`);
  }
  if (r.short) parts.push(`Short answer, normalised exact match (${r.short.errors} failed)\n${accuracyTable(r.short.rows)}`);
  if (r.grounding) {
    const g = r.grounding;
    parts.push(
      `Grounding (${g.unparsed} answers held no box, ${g.errors} failed)\n` +
        table(['n', 'IoU >= 0.5', 'rate %', 'mean IoU'], [[String(g.n), String(g.hits), pct(g.rate), g.meanIou.toFixed(3)]]),
    );
  }
  if (r.judged) {
    const j = r.judged;
    parts.push(
      `Judged relative score (model / reference x 100; ${j.unparsed} reviews unparsed, ${j.errors} failed)\n` +
        table(['category', 'n', 'reference', 'model', 'relative %'], j.scores.map((s) => [s.category, String(s.n), s.reference.toFixed(2), s.model.toFixed(2), pct(s.relative)])),
    );
  }
  return parts.join('\n\n') + '\n';
}
