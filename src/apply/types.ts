/**
 * Plain data in and out of the apply engine. Everything here is JSON-serialisable so results
 * can be stored as they are and compared in golden tests.
 */

/** One patch mail as the mail parser hands it over. `diff` is untrusted. */
export interface PatchInput {
  msgid: string;
  subject: string;
  authorName: string;
  authorEmail: string;
  date: Date;
  /** The commit message (subject line first), used verbatim for the commit. */
  message: string;
  diff: string;
}

/** Why a base was tried. */
export type BaseWhy = 'base-commit' | 'hint' | 'mapped' | 'default';

/** A ref (or commit id) to try as the series' base. */
export interface BaseCandidate {
  ref: string;
  why: BaseWhy;
}

/** Limits on untrusted patches; see `DEFAULT_LIMITS` in safety.ts. */
export interface SafetyLimits {
  /** Largest decoded size of one `GIT binary patch` file, in bytes (default 1 MiB). */
  maxBinaryBytes: number;
  /** Largest diff text of one patch, in bytes (default 5 MiB). */
  maxPatchBytes: number;
  /** Most files one patch may touch (default 500). */
  maxFiles: number;
}

/** What to apply, where, on which bases. */
export interface ApplyRequest {
  /** Path to a local git repository (work tree or bare); it is only read, plus new objects. */
  tree: string;
  /** The series' patches 1..n in order (index 0 here is patch 1); null = the series lacks it. */
  patches: (PatchInput | null)[];
  /** Bases in the order to try them; see selectCandidates. */
  candidates: BaseCandidate[];
  limits?: Partial<SafetyLimits>;
}

/** How one base fared. */
export type AttemptResult = 'applied' | 'applied-with-fuzz' | 'already-applied' | 'failed' | 'missing' | 'rejected';

/** One base tried, in order; every candidate gets one. */
export interface BaseAttempt {
  ref: string;
  /** What the ref resolved to; null when it did not resolve (result 'missing') or was refused ('rejected'). */
  commit: string | null;
  why: BaseWhy;
  result: AttemptResult;
  /** 1-based number of the first patch that failed on this base. */
  failedPatch?: number;
  file?: string;
  /** The failing hunk's header, `@@ -a,b +c,d @@`. */
  hunk?: string;
  /** The lines git searched for and did not find (the hunk's preimage). */
  context?: string;
  /** git's own error line, or why the ref was refused. */
  detail?: string;
}

/** One hunk as written in the patch. */
export interface ParsedHunk {
  /** `@@ -a,b +c,d @@` (without the function-name tail). */
  header: string;
  /** The function-name tail after the second `@@`, trimmed (may be empty). */
  section: string;
  oldStart: number;
  oldLines: number;
  newStart: number;
  newLines: number;
  /** Added lines without the leading '+'. */
  added: string[];
  /** Removed lines without the leading '-'. */
  removed: string[];
  /** The hunk body as written (each line with its ' ', '+', '-' or '\' marker). */
  lines: string[];
}

/** What a file diff does to its file. */
export type FileChange = 'modified' | 'added' | 'deleted' | 'renamed' | 'copied' | 'mode';

/** One `diff --git` section (or plain `---`/`+++` diff) as written in the patch. */
export interface ParsedFile {
  /** Path before (null for a new file). */
  oldPath: string | null;
  /** Path after (null for a deleted file). */
  newPath: string | null;
  change: FileChange;
  oldMode: string | null;
  newMode: string | null;
  binary: boolean;
  hunks: ParsedHunk[];
}

/** Per-patch outcome. */
export type PatchStatus = 'applied' | 'applied-with-fuzz' | 'already-applied' | 'failed' | 'skipped' | 'missing' | 'rejected';

/** How a patch that applied was applied. */
export type ApplyMethod = 'plain' | '3way' | 'fuzz';

/** What happened to one patch of the series. */
export interface PatchResult {
  /** 1-based position in the series (the `n` of `[PATCH n/m]`). */
  index: number;
  msgid: string | null;
  subject: string | null;
  status: PatchStatus;
  method?: ApplyMethod;
  /**
   * Set when the patch applied (with hunks at an offset) and also reverse-applies on the same
   * tree, at other places than where it applied: its post-image is already somewhere in the
   * file, so it may be in already. (When the forward apply matched onto the patch's own added
   * lines, the patch is 'already-applied' instead, with a `detail` saying so.)
   */
  reverseApplies?: true;
  /** The commit made for this patch (pre-image = its parent); null unless it applied. */
  commit: string | null;
  /** For 'failed': the file, hunk header and unmatched context, as in {@link BaseAttempt}. */
  file?: string;
  hunk?: string;
  context?: string;
  detail?: string;
  /** The patch's files and hunks, whether or not it applied; empty for a missing patch. */
  files: ParsedFile[];
}

/** Series outcome. */
export type SeriesStatus = 'applied' | 'applied-with-fuzz' | 'already-applied' | 'partial' | 'not-applied' | 'rejected';

/** Everything the apply stage learned about a series. */
export interface ApplyResult {
  /**
   * 'rejected': a patch failed the safety checks and git never ran; 'not-applied': no base took
   * every present patch; 'partial': the series lacks patches and the present ones applied;
   * 'already-applied': every patch reverse-applies on the base; 'applied-with-fuzz': at least
   * one patch needed the fuzzy fallback; 'applied': the rest (plain or clean 3-way).
   */
  status: SeriesStatus;
  base: { ref: string; commit: string } | null;
  /** The last commit made (or the base when every patch was already applied); null when not applied. */
  head: string | null;
  attempts: BaseAttempt[];
  patches: PatchResult[];
  /** False when any patch is missing. */
  complete: boolean;
  /** One human line, e.g. "not applied; the diff alone was reviewed". */
  label: string;
  /**
   * Which entry of `attempts` the per-patch outcomes in `patches` come from: the base used,
   * or for 'not-applied' the attempt that got furthest; null when no attempt ran git.
   */
  attemptIndex: number | null;
}

/** Error codes for src/errors.ts (kept local until the catalogue gains them). */
export type ApplyErrorCode = 'APPLY_TREE' | 'APPLY_GIT' | 'TREE_INIT';
