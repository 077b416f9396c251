import { simpleParser } from 'mailparser';
import type { Db } from '../store/db.js';
import { reasonOf } from '../errors.js';
import { dismissConcern } from './concerns.js';
import { addressMatches } from './policy.js';
import type { ReportPolicy } from './policy.js';

/** A command a maintainer writes on a line of its own in a reply to the bot. */
export type EmailCommand = { kind: 'dismiss'; concern: string; reason: string } | { kind: 'rerun' };

/*
 * `vfio-review: dismiss <concern-id> <reason>` and `vfio-review: rerun`, each alone on a line. Quoted
 * lines ("> ...") never count, so quoting the bot's own footer, which shows the syntax, does nothing;
 * neither does the footer's own example id, which is not hex.
 */
const COMMAND = /^vfio-review:[ \t]+(?<verb>dismiss|rerun)\b[ \t]*(?<rest>.*)$/i;
const DISMISS = /^(?<id>[0-9a-f]{12})[ \t]+(?<reason>\S.*)$/i;

/** The commands in a message's plain text, in order. Malformed command lines are reported, not guessed at. */
export function parseCommands(text: string): { commands: EmailCommand[]; errors: string[] } {
  const commands: EmailCommand[] = [];
  const errors: string[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line.startsWith('>')) continue;
    const m = COMMAND.exec(line);
    if (!m?.groups) continue;
    if (m.groups.verb!.toLowerCase() === 'rerun') {
      commands.push({ kind: 'rerun' });
      continue;
    }
    const d = DISMISS.exec(m.groups.rest!.trim());
    if (!d?.groups) {
      errors.push(`malformed command: ${line.slice(0, 200)}`);
      continue;
    }
    commands.push({ kind: 'dismiss', concern: d.groups.id!.toLowerCase(), reason: d.groups.reason!.trim() });
  }
  return { commands, errors };
}

export interface CommandOutcome {
  from: string | null;
  /** False when the sender is not in `report.commandsFrom`: nothing was done. */
  allowed: boolean;
  dismissed: { concern: string; changed: boolean }[];
  /** The mail asked for a rerun; the caller (daemon) runs it. */
  rerun: boolean;
  errors: string[];
}

/**
 * Reads the commands in one received mail and carries out the dismissals when the sender may give
 * commands. The allow-list is by address only: From can be forged, so keep it to people whose mail
 * the list server authenticates (DMARC) and review dismissals on the dashboard.
 */
export async function applyEmailCommands(db: Db, raw: Buffer, policy: ReportPolicy): Promise<CommandOutcome> {
  const mail = await simpleParser(raw);
  const from = mail.from?.value[0]?.address?.toLowerCase() ?? null;
  const { commands, errors } = parseCommands(mail.text ?? '');
  const out: CommandOutcome = { from, allowed: false, dismissed: [], rerun: false, errors };
  if (commands.length === 0) return out;
  out.allowed = from !== null && policy.commandsFrom.some((p) => addressMatches(p, from));
  if (!out.allowed) return out;
  for (const c of commands) {
    if (c.kind === 'rerun') {
      out.rerun = true;
      continue;
    }
    try {
      const r = dismissConcern(db, { id: c.concern, by: from!, why: c.reason, via: 'email' });
      out.dismissed.push({ concern: c.concern, changed: r.changed });
    } catch (err) {
      out.errors.push(reasonOf(err));
    }
  }
  return out;
}
