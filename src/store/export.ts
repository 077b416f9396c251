import type { Db } from './db.js';

/**
 * Writes messages as mboxrd: a `From ` separator line, body lines matching
 * /^>*From / get one more '>', and a blank line after each message.
 */
export function toMboxrd(messages: Iterable<Buffer>): Buffer {
  const parts: Buffer[] = [];
  for (const m of messages) {
    parts.push(Buffer.from('From vfio-review Thu Jan  1 00:00:00 1970\n'));
    const text = m.toString('latin1').replace(/\r\n/g, '\n').replace(/^(>*From )/gm, '>$1');
    parts.push(Buffer.from(text.endsWith('\n') ? text : text + '\n', 'latin1'), Buffer.from('\n'));
  }
  return Buffer.concat(parts);
}

/** Raw bytes of every stored message of the thread a Message-ID belongs to, oldest first. */
export function threadRaw(db: Db, msgid: string): Buffer[] {
  return (
    db
      .prepare(
        `SELECT r.bytes FROM thread_nodes t
         JOIN thread_nodes n ON n.root = t.root
         JOIN messages m ON m.message_id = n.msgid
         JOIN raw_messages r ON r.id = m.raw_id
         WHERE t.msgid = ? ORDER BY m.date_unix, m.id`,
      )
      .pluck()
      .all(msgid) as Buffer[]
  );
}
