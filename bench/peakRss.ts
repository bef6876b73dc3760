// Peak resident memory of this process, for the benchmarks' child processes.
//
// process.resourceUsage().maxRSS (getrusage's ru_maxrss) is not this process's own peak on Linux: the kernel
// carries the high-water mark of the image a process replaces through execve, and a freshly forked child's
// image is a copy of its parent. So a worker spawned by a parent holding 1 GB reports at least 1 GB whatever
// it used itself (measured: a child that used 39 MB reported 804 MB under a parent of 843 MB). The mm's own
// high-water mark, VmHWM in /proc/self/status, starts afresh at exec.

import { readFileSync } from 'node:fs';

/** Bytes: VmHWM where /proc has it (Linux), else getrusage's maxRSS (true for a process not forked from a large one). */
export function peakRssBytes(): number {
  try {
    const m = /^VmHWM:\s+(\d+)\s+kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // not Linux: fall through
  }
  return process.resourceUsage().maxRSS * 1024; // Node reports kilobytes
}
