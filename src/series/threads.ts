import type { Db } from '../store/db.js';

interface Row {
  message_id: string;
  in_reply_to: string | null;
  refs: string;
}

/**
 * Rebuilds the thread forest from Message-ID / In-Reply-To / References, as
 * JWZ's algorithm links them, with ghost nodes for parents that never
 * arrived. Iterative throughout: a forged References loop or a 10,000-deep
 * thread cannot blow the stack. Returns the number of threads.
 */
export function rebuildThreads(db: Db): number {
  const rows = db
    .prepare(
      `SELECT message_id, in_reply_to, refs FROM messages
       WHERE message_id IS NOT NULL AND msgid_state != 'reused' ORDER BY date_unix, id`,
    )
    .all() as Row[];
  const parent = new Map<string, string | null>();
  const present = new Set<string>();
  for (const r of rows) present.add(r.message_id);

  const ensure = (id: string): void => {
    if (!parent.has(id)) parent.set(id, null);
  };
  /** Would making `p` the parent of `c` close a loop? */
  const loops = (c: string, p: string): boolean => {
    let cur: string | null | undefined = p;
    for (let guard = 0; cur != null && guard < 100_000; guard++) {
      if (cur === c) return true;
      cur = parent.get(cur);
    }
    return false;
  };

  for (const r of rows) {
    const chain = (JSON.parse(r.refs) as string[]).filter((x) => x !== r.message_id);
    if (r.in_reply_to && r.in_reply_to !== r.message_id && chain[chain.length - 1] !== r.in_reply_to) {
      chain.push(r.in_reply_to);
    }
    ensure(r.message_id);
    // Link the References chain where nothing better is known yet.
    for (let i = 0; i < chain.length; i++) {
      const id = chain[i]!;
      ensure(id);
      if (i > 0) {
        const p = chain[i - 1]!;
        if (parent.get(id) == null && p !== id && !loops(id, p)) parent.set(id, p);
      }
    }
    // A message's own headers decide its parent.
    const own = chain[chain.length - 1];
    if (own && !loops(r.message_id, own)) parent.set(r.message_id, own);
  }

  // Roots, memoised walking up (iteratively).
  const root = new Map<string, string>();
  for (const id of parent.keys()) {
    const path: string[] = [];
    let cur = id;
    while (!root.has(cur)) {
      path.push(cur);
      const p = parent.get(cur);
      if (p == null) break;
      cur = p;
    }
    const r = root.get(cur) ?? cur;
    for (const n of path) root.set(n, r);
  }

  const roots = new Set<string>();
  db.transaction(() => {
    db.exec('DELETE FROM thread_nodes');
    const ins = db.prepare('INSERT INTO thread_nodes (msgid, parent, root, ghost) VALUES (?, ?, ?, ?)');
    for (const [id, p] of parent) {
      const r = root.get(id)!;
      roots.add(r);
      ins.run(id, p, r, present.has(id) ? 0 : 1);
    }
  })();
  return roots.size;
}

/** The thread (root and every node) a Message-ID belongs to, in tree order. */
export function threadOf(db: Db, msgid: string): { root: string; nodes: { msgid: string; parent: string | null; ghost: boolean; depth: number }[] } | null {
  const r = db.prepare('SELECT root FROM thread_nodes WHERE msgid = ?').pluck().get(msgid) as string | undefined;
  if (!r) return null;
  const rows = db.prepare('SELECT msgid, parent, ghost FROM thread_nodes WHERE root = ?').all(r) as {
    msgid: string;
    parent: string | null;
    ghost: number;
  }[];
  const kids = new Map<string | null, string[]>();
  for (const n of rows) {
    const k = kids.get(n.parent) ?? [];
    k.push(n.msgid);
    kids.set(n.parent, k);
  }
  const ghost = new Map(rows.map((n) => [n.msgid, n.ghost === 1]));
  const parentOf = new Map(rows.map((n) => [n.msgid, n.parent]));
  const out: { msgid: string; parent: string | null; ghost: boolean; depth: number }[] = [];
  const stack: [string, number][] = [[r, 0]];
  while (stack.length) {
    const [id, d] = stack.pop()!;
    out.push({ msgid: id, parent: parentOf.get(id) ?? null, ghost: ghost.get(id) ?? false, depth: d });
    const k = kids.get(id) ?? [];
    for (let i = k.length - 1; i >= 0; i--) stack.push([k[i]!, d + 1]);
  }
  return { root: r, nodes: out };
}
