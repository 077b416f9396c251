import { spawn } from 'node:child_process';

export interface Measured {
  seconds: number;
  maxRssMb: number;
  status: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a command under GNU time to get wall time and peak RSS of the whole
 * process tree's largest member, the same way for our tool and its peer.
 */
export function measure(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<Measured> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn('/usr/bin/time', ['-f', '__TIME__ %e %M', cmd, ...args], {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (status) => {
      const m = /__TIME__ (?<e>[\d.]+) (?<k>\d+)/.exec(stderr);
      const wall = Number(process.hrtime.bigint() - started) / 1e9;
      resolve({
        seconds: wall,
        maxRssMb: m?.groups ? Number(m.groups.k) / 1024 : NaN,
        status: status ?? -1,
        stdout,
        stderr: stderr.replace(/__TIME__.*\n?/, ''),
      });
    });
  });
}

/** A plain-text table, columns padded. */
export function table(head: string[], rows: (string | number)[][]): string {
  const cells = [head, ...rows.map((r) => r.map((c) => (typeof c === 'number' ? fmt(c) : c)))];
  const w = head.map((_, i) => Math.max(...cells.map((r) => String(r[i] ?? '').length)));
  return cells.map((r) => r.map((c, i) => String(c).padEnd(w[i]!)).join('  ')).join('\n');
}

function fmt(n: number): string {
  if (!Number.isFinite(n)) return '-';
  if (Number.isInteger(n)) return String(n);
  if (Math.abs(n) >= 100) return n.toFixed(0);
  if (Math.abs(n) >= 10) return n.toFixed(1);
  return n.toFixed(2);
}
