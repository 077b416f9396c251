import { pino, type Logger } from 'pino';
import type { LogLevel } from '../config/daemon.js';

export type { Logger };

/**
 * The daemon's structured log: one JSON object per line on stderr (stdout stays for command
 * output), a static message and a metadata object. Synchronous writes: the line describing what
 * was in hand when a process is killed must not be lost in a buffer.
 */
export function daemonLogger(level: LogLevel, dest: number | NodeJS.WritableStream = 2): Logger {
  const stream = typeof dest === 'number' ? pino.destination({ dest, sync: true }) : dest;
  return pino({ level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime }, stream);
}
