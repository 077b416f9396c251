/**
 * The measured half of `bench rules`: every rule over whole files of one commit, each file seen
 * as a patch that adds it (every line "added", no before side), the way the check pipeline sees
 * a new file. Runs in a child process (src/bench/rules-entry.mjs) so that /usr/bin/time gives it
 * its own wall time and peak RSS, the same way checkpatch.pl is measured.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { HARDENING_CONFIG, hermeticEnv } from '../apply/git.js';
import { buildModel, loadParser, type ModelCache, type SourceReader, type TreeModel } from '../cmodel/index.js';
import type { FileModel } from '../cmodel/declarations.js';
import { RULES } from '../rules/index.js';
import { runRules } from '../rules/run.js';
import { readBlobsSync, type PatchView } from '../rules/context.js';
import type { ChangedFile } from '../rules/types.js';

/** One rule's share of the pass. */
export interface RuleTime {
  id: string;
  seconds: number;
  findings: number;
  /** Files on which the rule threw (reported by runRules as a robustness finding). */
  failures: number;
}

/** What the child prints (one JSON line). Times are in seconds, measured inside the child. */
export interface PassResult {
  commit: string;
  files: number;
  bytes: number;
  lines: number;
  findings: number;
  failures: number;
  /** Files the models read beyond the checked ones: headers and siblings. */
  contextFiles: number;
  seconds: { total: number; startup: number; read: number; fileModels: number; treeModels: number; rules: number };
  rules: RuleTime[];
  /** The slowest files, model + rules. */
  slowest: { path: string; seconds: number }[];
}

const MB = 1024 * 1024;

/** Paths of the .c/.h files under `dirs` at `commit`, with their sizes (`git ls-tree -r -l`). */
export function listCFiles(gitDir: string, commit: string, dirs: string[], home: string): { path: string; size: number }[] {
  const out = gitSync(gitDir, home, ['ls-tree', '-r', '-l', '-z', commit, '--', ...dirs]).toString('utf8');
  const files: { path: string; size: number }[] = [];
  for (const rec of out.split('\0')) {
    const m = /^\d+ blob [0-9a-f]+ +(?<size>\d+)\t(?<path>.+)$/s.exec(rec);
    if (m?.groups && /\.[ch]$/.test(m.groups.path!)) files.push({ path: m.groups.path!, size: Number(m.groups.size) });
  }
  return files.sort((a, b) => a.path.localeCompare(b.path));
}

function gitSync(gitDir: string, home: string, args: string[], input?: string): Buffer {
  return execFileSync('git', [...HARDENING_CONFIG, '--git-dir', gitDir, ...args], {
    env: hermeticEnv(home), input, maxBuffer: 512 * MB, stdio: ['pipe', 'pipe', 'ignore'],
  });
}

/**
 * A synchronous reader over one commit. The whole tree is listed once (one `ls-tree -r`), so a
 * header the tree lacks costs a map lookup, not a git process; blobs are fetched in one
 * `cat-file --batch` for the checked files and one `cat-file blob` per header or sibling.
 */
class CommitReader implements SourceReader {
  private readonly blobs = new Map<string, string>();
  private readonly text = new Map<string, string>();
  private readonly dirs = new Map<string, string[]>();
  reads = 0;

  constructor(private readonly gitDir: string, commit: string, private readonly home: string) {
    const out = gitSync(gitDir, home, ['ls-tree', '-r', '-z', '--full-tree', commit]).toString('utf8');
    for (const rec of out.split('\0')) {
      const tab = rec.indexOf('\t');
      if (tab < 0 || !rec.includes(' blob ')) continue;
      const path = rec.slice(tab + 1);
      this.blobs.set(path, rec.slice(tab - 40, tab));
      const dir = posix.dirname(path);
      const names = this.dirs.get(dir) ?? [];
      names.push(posix.basename(path));
      this.dirs.set(dir, names);
    }
  }

  /** Fetch many files with one git process (the checked files, before the clock for models starts). */
  prefetch(paths: string[]): void {
    const want = paths.filter((p) => this.blobs.has(p) && !this.text.has(p));
    if (want.length === 0) return;
    const blobs = readBlobsSync(this.gitDir, this.home, [...new Set(want.map((p) => this.blobs.get(p)!))]);
    for (const p of want) this.text.set(p, blobs.get(this.blobs.get(p)!) ?? '');
    this.reads++;
  }

  readFile(path: string): string | null {
    const cached = this.text.get(path);
    if (cached !== undefined) return cached;
    const sha = this.blobs.get(path);
    if (!sha) return null;
    const t = gitSync(this.gitDir, this.home, ['cat-file', 'blob', sha]).toString('utf8');
    this.reads++;
    this.text.set(path, t);
    return t;
  }

  /** Entry names of a directory, as {@link SourceReader.list} specifies. */
  list(dir: string): string[] {
    return [...(this.dirs.get(dir.replace(/\/$/, '')) ?? [])];
  }
}

/**
 * The model cache with a stopwatch: buildModel looks a file up, parses and extracts it on a miss,
 * then stores it, so the time from a missed `get` to the `set` is the per-file model (pre-filter,
 * tree-sitter, extraction). Measured this way because build.ts keeps that step private.
 */
class TimedFiles extends Map<string, FileModel> {
  ms = 0;
  private missAt = 0;

  override get(key: string): FileModel | undefined {
    const hit = super.get(key);
    if (hit === undefined) this.missAt = performance.now();
    return hit;
  }

  override set(key: string, value: FileModel): this {
    if (this.missAt) this.ms += performance.now() - this.missAt;
    this.missAt = 0;
    return super.set(key, value);
  }
}

/** A whole file as one patch adding it. */
function wholeFileView(path: string, text: string, model: TreeModel): PatchView {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  const added = new Set<number>();
  const addedText = new Map<number, string>();
  lines.forEach((l, i) => {
    added.add(i + 1);
    addedText.set(i + 1, l);
  });
  const file: ChangedFile = { path, oldPath: null, status: 'added', added, removed: new Set(), addedText };
  return {
    patch: { msgid: `whole-file:${path}`, index: 1, subject: `whole file ${path}` },
    applied: true,
    files: [file],
    before: () => null,
    after: (p) => (p === path ? text : null),
    model: async (side) => (side === 'after' ? model : null),
  };
}

/**
 * Build the model of each file (with the headers and siblings buildModel pulls in) and run every
 * rule on it, one rule at a time so each gets its own clock. Findings are counted, not reported:
 * a whole-file pass over released code is a load test, not a review.
 */
export async function rulesPass(gitDir: string, commit: string, paths: string[], home: string): Promise<PassResult> {
  const t0 = performance.now();
  await loadParser();
  const tReady = performance.now();
  const reader = new CommitReader(gitDir, commit, home);
  reader.prefetch(paths);
  const tRead = performance.now();
  const files = new TimedFiles();
  const cache: ModelCache = { files, recent: [] };
  const perRule = new Map<string, RuleTime>(RULES.map((r) => [r.id, { id: r.id, seconds: 0, findings: 0, failures: 0 }]));
  const perFile: { path: string; seconds: number }[] = [];
  const res: PassResult = {
    commit, files: 0, bytes: 0, lines: 0, findings: 0, failures: 0, contextFiles: 0,
    seconds: { total: 0, startup: 0, read: 0, fileModels: 0, treeModels: 0, rules: 0 }, rules: [], slowest: [],
  };
  let modelMs = 0;
  let rulesMs = 0;
  const seen = new Set(paths);
  for (const path of paths) {
    const text = reader.readFile(path);
    if (text === null) continue;
    res.files++;
    res.bytes += Buffer.byteLength(text);
    res.lines += text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
    const f0 = performance.now();
    const model = await buildModel(reader, [path], { cache });
    const f1 = performance.now();
    modelMs += f1 - f0;
    for (const c of model.context) seen.add(c);
    const view = wholeFileView(path, text, model);
    for (const rule of RULES) {
      const r0 = performance.now();
      const found = await runRules([rule], [view]);
      const t = perRule.get(rule.id)!;
      t.seconds += (performance.now() - r0) / 1000;
      const failed = found.filter((x) => x.category === 'robustness' && x.message.startsWith('rule failed:')).length;
      t.failures += failed;
      t.findings += found.length - failed;
    }
    const f2 = performance.now();
    rulesMs += f2 - f1;
    perFile.push({ path, seconds: (f2 - f0) / 1000 });
  }
  const end = performance.now();
  res.contextFiles = seen.size - paths.length;
  res.rules = [...perRule.values()];
  res.findings = res.rules.reduce((a, r) => a + r.findings, 0);
  res.failures = res.rules.reduce((a, r) => a + r.failures, 0);
  // Headers and siblings are read inside buildModel; their git reads count as model time there.
  res.seconds = {
    total: (end - t0) / 1000,
    startup: (tReady - t0) / 1000,
    read: (tRead - tReady) / 1000,
    fileModels: files.ms / 1000,
    treeModels: (modelMs - files.ms) / 1000,
    rules: rulesMs / 1000,
  };
  res.slowest = perFile.sort((a, b) => b.seconds - a.seconds).slice(0, 5);
  return res;
}

/** The child's main: `rules-entry.mjs <git-dir> <commit> <path>...`; prints one JSON line. */
export async function childMain(argv: string[]): Promise<void> {
  const [gitDir, commit, ...paths] = argv;
  if (!gitDir || !commit) throw new Error('usage: rules-entry.mjs GIT_DIR COMMIT PATH...');
  const home = mkdtempSync(join(tmpdir(), 'vr-bench-rules-home-'));
  try {
    process.stdout.write(JSON.stringify(await rulesPass(gitDir, commit, paths, home)) + '\n');
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}
