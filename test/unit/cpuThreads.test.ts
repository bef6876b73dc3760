import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { defaultCpuThreads, parseCpuList, physicalCores } from '../../src/engine/cpuThreads';

test('CPU lists as the kernel writes them', () => {
  assert.deepEqual(parseCpuList('0-3,8,10-11\n'), [0, 1, 2, 3, 8, 10, 11]);
  assert.deepEqual(parseCpuList('5'), [5]);
  for (const bad of ['', 'a', '3-1', '0-', '1,,2']) assert.equal(parseCpuList(bad), undefined, bad);
});

test('SMT siblings are one core; a CPU whose topology cannot be read makes the count unknown', () => {
  // 2 packages x 2 cores x 2 threads: CPU n is core (n >> 1) & 1 of package n >> 2
  const topo = (cpu: number) => (cpu < 8 ? { pkg: String(cpu >> 2), core: String((cpu >> 1) & 1) } : undefined);
  assert.equal(physicalCores([0, 1, 2, 3, 4, 5, 6, 7], topo), 4);
  assert.equal(physicalCores([0, 1], topo), 1, 'two siblings');
  assert.equal(physicalCores([0, 2, 4], topo), 3);
  assert.equal(physicalCores([0, 8], topo), undefined);
  assert.equal(physicalCores([], topo), undefined);
});

test('the default thread count reads the allowed CPUs and sysfs, and leaves the choice to ONNX Runtime elsewhere', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cpu-threads-'));
  try {
    const status = path.join(dir, 'status');
    const sys = path.join(dir, 'cpu');
    // 4 logical CPUs, SMT pairs (0,1) and (2,3); the process may run on 1-3 only
    for (let cpu = 0; cpu < 4; cpu++) {
      fs.mkdirSync(path.join(sys, `cpu${cpu}`, 'topology'), { recursive: true });
      fs.writeFileSync(path.join(sys, `cpu${cpu}`, 'topology', 'physical_package_id'), '0\n');
      fs.writeFileSync(path.join(sys, `cpu${cpu}`, 'topology', 'core_id'), `${cpu >> 1}\n`);
    }
    fs.writeFileSync(status, 'Name:\tnode\nCpus_allowed:\te\nCpus_allowed_list:\t1-3\nMems_allowed:\t1\n');
    assert.equal(defaultCpuThreads('linux', status, sys), Math.min(2, os.availableParallelism()));
    fs.writeFileSync(status, 'Cpus_allowed_list:\t0-7\n'); // CPUs 4-7 have no topology here
    assert.equal(defaultCpuThreads('linux', status, sys), undefined);
    fs.writeFileSync(status, 'Name:\tnode\n');
    assert.equal(defaultCpuThreads('linux', status, sys), undefined);
    assert.equal(defaultCpuThreads('linux', path.join(dir, 'missing'), sys), undefined);
    assert.equal(defaultCpuThreads('win32', status, sys), undefined);
    assert.equal(defaultCpuThreads('darwin', status, sys), undefined);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('on this Linux machine the count is at least one and at most the CPUs Node may use', { skip: process.platform !== 'linux' ? 'Linux only: other platforms keep ONNX Runtime\'s default' : false }, () => {
  const n = defaultCpuThreads();
  assert.ok(n !== undefined && n >= 1 && n <= os.availableParallelism(), String(n));
});
