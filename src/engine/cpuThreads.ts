// How many CPU threads a session gets when the user leaves the choice to us.
//
// Left at 0, ONNX Runtime starts one intra-op thread per physical core and pins them to cores. Pinned
// threads fight whatever else is scheduled there: the thread that calls run() (a libuv worker here) is
// not pinned and takes part in every parallel section, and on a machine shared with the editor, a
// language server or other virtual machines a pinned thread cannot move off a busy core. Measured on
// a 2-core VM (bench/README.md): a 207 M-parameter fp32 decode step 35-57 ms at ORT's default against
// 25-35 ms with the same two threads unpinned. So on Linux the engine counts the physical cores it
// may run on (the process's CPU affinity, then /sys's core topology) and passes that number
// explicitly, which leaves the threads unpinned. Elsewhere, or when the topology cannot be read, ONNX
// Runtime's own choice stays.

import * as fs from 'node:fs';
import * as os from 'node:os';

/** "0-3,8,10-11" -> [0, 1, 2, 3, 8, 10, 11]; undefined for anything else. */
export function parseCpuList(list: string): number[] | undefined {
  const out: number[] = [];
  for (const part of list.trim().split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) return undefined;
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo || hi - lo > 65536) return undefined;
    for (let c = lo; c <= hi; c++) out.push(c);
  }
  return out.length ? out : undefined;
}

/**
 * Distinct physical cores among `cpus`: logical CPUs that share a package and a core id are one core
 * (SMT siblings). `topology(cpu)` gives a CPU's package and core id, or undefined where it cannot be read,
 * which makes the whole answer undefined (a partial count would undercount).
 */
export function physicalCores(cpus: readonly number[], topology: (cpu: number) => { pkg: string; core: string } | undefined): number | undefined {
  const cores = new Set<string>();
  for (const cpu of cpus) {
    const t = topology(cpu);
    if (!t) return undefined;
    cores.add(`${t.pkg}/${t.core}`);
  }
  return cores.size || undefined;
}

/** Reads a Linux CPU's package and core id from sysfs. */
function linuxTopology(sysCpu: string): (cpu: number) => { pkg: string; core: string } | undefined {
  return (cpu) => {
    try {
      const dir = `${sysCpu}/cpu${cpu}/topology`;
      return { pkg: fs.readFileSync(`${dir}/physical_package_id`, 'utf8').trim(), core: fs.readFileSync(`${dir}/core_id`, 'utf8').trim() };
    } catch {
      return undefined;
    }
  };
}

/**
 * The intra-op thread count for a session when the user chose none: the physical cores this process may
 * run on (Linux), never more than Node's availableParallelism(); undefined (ONNX Runtime decides) where
 * that cannot be read.
 */
export function defaultCpuThreads(platform: NodeJS.Platform = process.platform, procStatus = '/proc/self/status', sysCpu = '/sys/devices/system/cpu'): number | undefined {
  if (platform !== 'linux') return undefined;
  let status: string;
  try {
    status = fs.readFileSync(procStatus, 'utf8');
  } catch {
    return undefined;
  }
  const allowed = /^Cpus_allowed_list:\s*(.+)$/m.exec(status);
  const cpus = allowed ? parseCpuList(allowed[1]) : undefined;
  if (!cpus) return undefined;
  const cores = physicalCores(cpus, linuxTopology(sysCpu));
  return cores === undefined ? undefined : Math.max(1, Math.min(cores, os.availableParallelism()));
}
