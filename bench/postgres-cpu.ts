import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { sandboxDir } from '@mssgw/config';

const HZ = 100;

/** utime, stime, cutime, cstime and the parent pid of a process, from /proc (clock ticks). */
function stat(pid: number): { own: number; children: number; ppid: number } | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
    return { ppid: Number(fields[1]), own: Number(fields[11]) + Number(fields[12]), children: Number(fields[13]) + Number(fields[14]) };
  } catch {
    return undefined; // ended meanwhile
  }
}

/**
 * CPU seconds the sandbox PostgreSQL has used so far: its postmaster, every backend and background process alive,
 * and those that ended (the postmaster waits for them, so their time is in its children's count). PostgreSQL runs a
 * process per connection, so one pid would miss most of it.
 */
export function postgresCpuSeconds(): number {
  const pidFile = path.join(sandboxDir(), 'postgres', 'data', 'postmaster.pid');
  const postmaster = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  const root = stat(postmaster);
  if (!root) throw new Error('the sandbox PostgreSQL is not running');
  let ticks = root.own + root.children;
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    const s = stat(Number(p));
    if (s?.ppid === postmaster) ticks += s.own;
  }
  return ticks / HZ;
}
