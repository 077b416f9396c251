import type { Category } from '../check/check.js';

/** What kind of concurrency bug a stable fix says it fixes; 'other' = none of them. */
export type FixClass = 'deadlock' | 'use-after-free' | 'race' | 'refcount' | 'locking' | 'other';

/** The classes reviewed, in priority order: a fix matching several gets the first. */
export const CONCURRENCY_CLASSES = ['deadlock', 'use-after-free', 'race', 'refcount', 'locking'] as const satisfies readonly FixClass[];

/**
 * Keywords per class, matched case-insensitively on whole words of the subject and commit
 * message. `lock` is a whole word, so identifiers (`msm_iommu_lock`, `locked_vm`,
 * `DEFINE_SPINLOCK`) do not count; `hang` is left out on purpose: in this corpus it names
 * infinite loops and wrong-IOMMU invalidation timeouts, not lock bugs.
 */
const KEYWORDS: Record<Exclude<FixClass, 'other'>, RegExp> = {
  deadlock: /\b(?:dead-?lock(?:s|ed)?|AB-?BA|circular locking|lock(?:ing)? inversion|recursive locking|lockdep)\b/gi,
  'use-after-free': /\b(?:use[- ]after[- ]free|UAF|double[- ]free|freed while (?:still )?in use|after (?:it is|it has been|being) freed|dangling pointer)\b/gi,
  race: /\b(?:rac(?:e|es|y|ing)|data race|concurren(?:t|tly|cy)|TOCTOU|KCSAN|in parallel|simultaneous(?:ly)?|at the same time)\b/gi,
  refcount: /\b(?:refcount(?:s|ing|ed)?|reference count(?:s|ing)?|refcnt|kref|reference leak|ref(?:erence)? imbalance|missing (?:put|get)|extra (?:put|get))\b/gi,
  locking: /\b(?:(?:un)?lock(?:s|ed|ing)?|mutex(?:es)?|spin_?lock(?:s|ed)?|rwsem|rcu_read_(?:un)?lock|atomic context|sleep(?:s|ing)? (?:in|while|under) (?:an? )?(?:atomic|spinlock|lock))\b/gi,
};

/** A NULL dereference counts only together with a concurrency keyword (then that class wins). */
const NULL_DEREF = /\b(?:NULL(?:-ptr)?(?: pointer)? deref\w*|null-ptr-deref)/gi;

/** Trailers (`Fixes:`, `Cc:`, `*-by:`, `Link:`): they quote other commits' subjects and name people, not the bug. */
const TRAILER = /^\s*(?:[A-Za-z]+(?:-[A-Za-z]+)*-by|Fixes|Cc|Link|Closes|Message-Id|Change-Id|Bug|References):.*$/gim;
/** A commit quoted in prose, `abcdef123456 ("subsys: subject")`: its subject describes that commit, not this fix. */
const QUOTED_COMMIT = /\b[0-9a-f]{8,40}\s*\(\s*"[^"]*"\s*\)/gi;

/** What {@link classifyFix} says, with the words it matched so a reader can check it. */
export interface FixClassification {
  class: FixClass;
  /** Every class whose keywords matched, in priority order. */
  classes: FixClass[];
  keywords: string[];
}

/** Whether a commit message carries a `Fixes: <sha>` trailer. */
export function hasFixesTag(message: string): boolean {
  return /^\s*Fixes:\s*[0-9a-f]{6,40}\b/im.test(message);
}

/** Classifies a fix by keywords in its subject and commit message (trailers and quoted commit subjects left out). */
export function classifyFix(subject: string, message: string): FixClassification {
  const text = `${subject}\n${message}`.replace(TRAILER, '').replace(QUOTED_COMMIT, '');
  const classes: FixClass[] = [];
  const keywords = new Set<string>();
  for (const c of CONCURRENCY_CLASSES) {
    const words = [...text.matchAll(KEYWORDS[c])].map((m) => m[0].toLowerCase());
    if (words.length === 0) continue;
    classes.push(c);
    for (const w of words) keywords.add(`${c}:${w}`);
  }
  for (const m of text.matchAll(NULL_DEREF)) keywords.add(`null-deref:${m[0].toLowerCase()}`);
  return { class: classes[0] ?? 'other', classes: classes.length ? classes : ['other'], keywords: [...keywords] };
}

/** Finding categories (and rule ids) that speak to each class: a hit of one of them is "on topic". */
export const ON_TOPIC: Record<Exclude<FixClass, 'other'>, readonly (Category | string)[]> = {
  deadlock: ['lock-order'],
  'use-after-free': ['lifetime-uaf', 'refcount'],
  race: ['race-toctou', 'lockless-access', 'init-order', 'lifetime-uaf'],
  refcount: ['refcount', 'lifetime-uaf'],
  locking: ['lock-order', 'lockless-access', 'race-toctou', 'sleep-in-atomic'],
};
