import type { Category, Finding } from '../check/check.js';
import type { TreeModel } from '../cmodel/index.js';

export type Severity = Finding['severity'];
/** How often a rule's finding is right on real code; shown in every reply. */
export type Confidence = 'high' | 'moderate' | 'low';

export interface RuleMeta {
  severity: Severity;
  category: Category;
  confidence: Confidence;
  /** One line: what the rule looks for. */
  description: string;
  /** What reviewers on the lists say about this pattern (the reason the rule exists). */
  reviewers: string;
  /** When the rule is wrong, said plainly. */
  falsePositives: string;
  /** Message templates; `{{name}}` is filled from the report's data. */
  messages: Record<string, string>;
  /**
   * 'text' for rules that read the added lines themselves and handle a series that did not apply
   * (bug-on, the uAPI rules); the others ('model', the default) need whole functions and, for such a
   * series, run on the functions the diff shows whole (reconstruct.ts).
   */
  input?: 'text' | 'model';
}

export interface Rule {
  /** == file name == test name == docs/rules/<id>.md */
  id: string;
  meta: RuleMeta;
  check(ctx: RuleContext): void | Promise<void>;
}

export function defineRule(rule: Rule): Rule {
  return rule;
}

/** A file as one patch changes it. Line numbers are 1-based. */
export interface ChangedFile {
  path: string;
  oldPath: string | null;
  status: 'added' | 'modified' | 'deleted' | 'renamed';
  /** Lines of the post-image this patch added or changed. */
  added: Set<number>;
  /** Lines of the pre-image this patch removed or changed. */
  removed: Set<number>;
  /** The added lines' text by post-image line number (all a rule has when the series did not apply). */
  addedText: Map<number, string>;
  /**
   * Diff-alone views only: every line the diff adds / removes, including those outside the items the
   * view shows (`added`/`removed` keep to shown lines). For pairing unchanged lines, not for findings.
   */
  diffAdded?: Set<number>;
  diffRemoved?: Set<number>;
}

export interface Report {
  messageId: string;
  file: string;
  line: number;
  function?: string | null;
  data?: Record<string, string | number>;
  /** Lines, lock classes, call paths: what the finding rests on. */
  evidence?: string[];
  /** A short direction, as a reviewer would suggest it. */
  suggestion?: string;
  trace?: string;
}

/** What a rule sees of one patch. */
export interface RuleContext {
  patch: { msgid: string; index: number; subject: string };
  /** False when the series did not apply: only `addedText` is known, `before`/`after` may be null. */
  applied: boolean;
  files: ChangedFile[];
  /** The file before this patch (null when absent or unknown). */
  before(path: string): string | null;
  /** The file after this patch (null when deleted or unknown). */
  after(path: string): string | null;
  /**
   * The C model of the .c/.h files this patch touches, and what they reach (headers, sibling files
   * defining callees), before or after the patch. Built once per patch and shared by every rule; null
   * when the side is unknown (the series did not apply) or the patch touches no C.
   */
  model(side: 'before' | 'after'): Promise<TreeModel | null>;
  report(r: Report): void;
}

/** A finding as rules produce it, before it is turned into the check's Finding. */
export interface RuleFinding extends Finding {
  confidence: Confidence;
  evidence: string[];
  suggestion: string | null;
}
