/**
 * The offset-preserving pre-filter run before tree-sitter sees kernel C.
 *
 * tree-sitter-c knows C, not the kernel's macro dialect: attributes such as `__user` or
 * `__must_hold(&x->lock)`, type arguments such as `container_of(p, struct T, m)` and GCC case
 * ranges make it emit ERROR nodes that swallow whole statements (about a fifth of the functions of
 * drivers/vfio and drivers/iommu). Every rewrite here keeps the text the same length and never
 * touches a newline, so byte offsets and line numbers in the tree stay those of the real file; we
 * rejected running the C preprocessor because we have no configured build and would lose exact
 * lines for findings.
 */

/** A lock-context annotation blanked by the pre-filter, kept for the lock rules. */
export interface LockAnnotation {
  kind: 'must_hold' | 'acquires' | 'releases';
  /** The argument text as written, e.g. `&matrix_dev->mdevs_lock`. */
  arg: string;
  /** Offset of the annotation in the source. */
  offset: number;
}

/** A global object defined through a macro (`static DEFINE_MUTEX(x);`), with the type it expands to. */
export interface MacroGlobal {
  name: string;
  type: string;
  offset: number;
}

/** What the pre-filter produced: same-length text plus what it blanked that the model needs. */
export interface PrefilterResult {
  text: string;
  annotations: LockAnnotation[];
  macroGlobals: MacroGlobal[];
}

/** Attribute-like identifiers that carry no meaning for the model and confuse the grammar. */
const BARE_ATTRIBUTES = [
  '__user', '__iomem', '__rcu', '__percpu', '__force', '__must_check', '__always_inline', '__init', '__exit',
  '__maybe_unused', '__cold', '__hot', 'noinline', '__noinline', '__initdata', '__initconst', '__exitdata',
  '__read_mostly', '__ro_after_init', '__weak', '__noreturn', '__always_unused', '__pure', '__visible',
  '__latent_entropy', '__bitwise', '__kernel', '__safe', '__nocast', '__private', '__deprecated', '__used',
  '__noclone', '__sched', '__ref', '__refdata', 'notrace', '__flatten', 'asmlinkage', '__randomize_layout',
  '____cacheline_aligned_in_smp', '____cacheline_aligned', '__cacheline_aligned_in_smp', '__cacheline_aligned',
  '____cacheline_internodealigned_in_smp', '__packed', '__attribute_const__', '__malloc', '__nocfi',
  '__no_sanitize_address', '__init_or_module', '__meminit', '__meminitdata', '__nosavedata', '__designated_init',
  '__counted_by_ptr', '__no_kcsan', '__no_profile', 'noinstr', '__iomem_ptr', '__le_bitwise', '__must_be_checked',
];

/** Attribute-like macros with an argument list, blanked together with their arguments. */
const CALL_ATTRIBUTES = [
  '__acquires', '__releases', '__must_hold', '__printf', '__scanf', '__aligned', '__section', '__alloc_size',
  '__assume_aligned', '__attribute__', '__attribute', '__free', '__cleanup', '__counted_by', '__diag_ignore',
  '__nonstring', '__cond_acquires', '__no_context_analysis', '__guarded_by', '__pt_guarded_by',
];

/** Whole-statement macros at file scope that we drop (they declare nothing the model uses). */
const DROP_STATEMENTS = /^[ \t]*(?:EXPORT_SYMBOL\w*|EXPORT_TRACEPOINT_SYMBOL\w*|MODULE_\w+|module_param\w*|module_init|module_exit|core_initcall|subsys_initcall\w*|arch_initcall|fs_initcall|device_initcall|late_initcall\w*|postcore_initcall|rootfs_initcall|__setup|early_param|ALLOW_ERROR_INJECTION|NOKPROBE_SYMBOL|IOMMU_OF_DECLARE|KUNIT_\w+)\s*\(/gm;

/** Macros whose first argument is a type, not an expression. */
const TYPE_FIRST_MACROS = new Set([
  'min_t', 'max_t', 'clamp_t', 'offsetof', 'offsetofend', 'sizeof_field', 'typecheck', 'DEFINE_PER_CPU', 'DECLARE_PER_CPU',
  'per_cpu_ptr_t', 'FIELD_SIZEOF', '__same_type', 'typeof_member', 'DEFINE_FREE', 'DEFINE_GUARD', 'DEFINE_LOCK_GUARD_1',
  'DEFINE_CLASS', 'KMEM_CACHE', 'type_max', 'type_min', 'is_signed_type', 'is_unsigned_type',
]);

/** Macros defining a global object: name -> the type the object has. */
const DEFINE_MACROS: Record<string, string> = {
  DEFINE_MUTEX: 'struct mutex',
  DEFINE_SPINLOCK: 'spinlock_t',
  DEFINE_RAW_SPINLOCK: 'raw_spinlock_t',
  DEFINE_RWLOCK: 'rwlock_t',
  DECLARE_RWSEM: 'struct rw_semaphore',
  DEFINE_SEMAPHORE: 'struct semaphore',
  DEFINE_SRCU: 'struct srcu_struct',
  DEFINE_STATIC_SRCU: 'struct srcu_struct',
  DEFINE_IDA: 'struct ida',
  DEFINE_IDR: 'struct idr',
  DEFINE_XARRAY: 'struct xarray',
  DEFINE_XARRAY_ALLOC: 'struct xarray',
  DEFINE_XARRAY_ALLOC1: 'struct xarray',
  LIST_HEAD: 'struct list_head',
  BLOCKING_NOTIFIER_HEAD: 'struct blocking_notifier_head',
  ATOMIC_NOTIFIER_HEAD: 'struct atomic_notifier_head',
  SRCU_NOTIFIER_HEAD: 'struct srcu_notifier_head',
  DECLARE_WAIT_QUEUE_HEAD: 'wait_queue_head_t',
  DECLARE_COMPLETION: 'struct completion',
  DEFINE_STATIC_KEY_FALSE: 'struct static_key_false',
  DEFINE_STATIC_KEY_TRUE: 'struct static_key_true',
};

/** Multi-word type spelled as a macro argument: struct/union/enum tags and multi-word primitives. */
const TYPE_ARG = String.raw`(?:const[ \t]+)?(?:(?:struct|union|enum)[ \t]+\w+|(?:unsigned|signed)(?:[ \t]+(?:long[ \t]+long|long|int|short|char))?(?:[ \t]+int)?|long[ \t]+long(?:[ \t]+int)?|long[ \t]+int|short[ \t]+int)(?:[ \t]*\*)*`;

const NEWLINE = 10;
const SPACE = 32;

/** Replace `[start, end)` of `buf` with spaces, keeping newlines so line numbers hold. */
function blank(buf: Uint16Array, start: number, end: number): void {
  for (let i = start; i < end; i++) if (buf[i] !== NEWLINE) buf[i] = SPACE;
}

/** Write `repl` over `[start, start + repl.length)`; callers guarantee it fits and has no newline. */
function overwrite(buf: Uint16Array, start: number, repl: string): void {
  for (let i = 0; i < repl.length; i++) buf[start + i] = repl.charCodeAt(i);
}

/** Index just past the `)` matching the `(` at `open`, or -1 when unbalanced. */
function matchParen(src: string, open: number): number {
  let depth = 0;
  for (let i = open; i < src.length; i++) {
    const c = src[i];
    if (c === '"' || c === "'") {
      // Skip literals: a `;` or `)` inside MODULE_PARM_DESC("...") text is not syntax.
      for (i++; i < src.length && src[i] !== c && src[i] !== '\n'; i++) if (src[i] === '\\') i++;
    } else if (c === '(') depth++;
    else if (c === ')') {
      depth--;
      if (depth === 0) return i + 1;
    } else if (c === ';' || c === '{' || c === '}') {
      // A statement boundary before the close: the macro is not what we took it for.
      return -1;
    }
  }
  return -1;
}

/** Turn a type spelled in argument position into one identifier of the same length. */
function typeToIdent(text: string): string {
  return text.replace(/[ \t*]/g, '_');
}

function blankAttributes(src: string, buf: Uint16Array, annotations: LockAnnotation[]): void {
  const bare = new RegExp(String.raw`\b(?:${BARE_ATTRIBUTES.join('|')})\b`, 'g');
  for (const m of src.matchAll(bare)) blank(buf, m.index, m.index + m[0].length);
  const call = new RegExp(String.raw`\b(?<name>${CALL_ATTRIBUTES.join('|')})[ \t]*\(`, 'g');
  for (const m of src.matchAll(call)) {
    const open = m.index + m[0].length - 1;
    const end = matchParen(src, open);
    if (end < 0) continue;
    const name = m.groups!.name!;
    if (name === '__acquires' || name === '__releases' || name === '__must_hold') {
      const kind = name === '__must_hold' ? 'must_hold' : name === '__acquires' ? 'acquires' : 'releases';
      annotations.push({ kind, arg: src.slice(open + 1, end - 1).trim(), offset: m.index });
    }
    blank(buf, m.index, end);
  }
}

function dropStatements(src: string, buf: Uint16Array): void {
  for (const m of src.matchAll(DROP_STATEMENTS)) {
    const open = m.index + m[0].length - 1;
    const end = matchParen(src, open);
    if (end < 0) continue;
    let stop = end;
    while (stop < src.length && (src[stop] === ' ' || src[stop] === '\t')) stop++;
    if (src[stop] === ';') stop++;
    blank(buf, m.index, stop);
  }
}

function rewriteTypeArguments(src: string, buf: Uint16Array): void {
  // A type after a comma and before a comma or close paren can only be a macro's type argument.
  const afterComma = new RegExp(String.raw`,(?<ws>\s*)(?<type>${TYPE_ARG})(?=\s*[,)])`, 'g');
  for (const m of src.matchAll(afterComma)) {
    const type = m.groups!.type!;
    if (!/[ \t*]/.test(type)) continue;
    overwrite(buf, m.index + 1 + m.groups!.ws!.length, typeToIdent(type));
  }
  // The first argument only for macros known to take a type there: a bare `(struct T *)` is a cast.
  const first = new RegExp(String.raw`\b(?<macro>\w+)[ \t]*\((?<ws>\s*)(?<type>${TYPE_ARG})(?=\s*[,)])`, 'g');
  for (const m of src.matchAll(first)) {
    if (!TYPE_FIRST_MACROS.has(m.groups!.macro!)) continue;
    const type = m.groups!.type!;
    const at = m.index + m[0].length - type.length;
    overwrite(buf, at, typeToIdent(type));
  }
}

function rewriteDeclarators(src: string, buf: Uint16Array, macroGlobals: MacroGlobal[]): void {
  // DECLARE_BITMAP(name, n) is a field or variable declaration: spell it as one.
  for (const m of src.matchAll(/\bDECLARE_BITMAP\((?<name>[ \t]*\w+[ \t]*),(?<n>[^()\n;]*(?:\([^()\n;]*\)[^()\n;]*)*)\)/g)) {
    const repl = `unsigned long ${m.groups!.name!.trim()}[${m.groups!.n!.trim()}]`;
    if (repl.length > m[0].length) continue;
    overwrite(buf, m.index, repl.padEnd(m[0].length, ' '));
  }
  const defines = new RegExp(String.raw`\b(?<macro>${Object.keys(DEFINE_MACROS).join('|')})[ \t]*\([ \t]*(?<name>\w+)`, 'g');
  for (const m of src.matchAll(defines)) {
    macroGlobals.push({ name: m.groups!.name!, type: DEFINE_MACROS[m.groups!.macro!]!, offset: m.index });
  }
}

function rewriteTypeofAndDefines(src: string, buf: Uint16Array): void {
  // `typeof(expr) v = ...` is a declaration the grammar cannot take: one identifier stands in for the type.
  for (const m of src.matchAll(/\b(?:typeof|__typeof__|__typeof)[ \t]*\(/g)) {
    const end = matchParen(src, m.index + m[0].length - 1);
    if (end < 0 || src.slice(m.index, end).includes('\n')) continue;
    overwrite(buf, m.index, '__typeof'.padEnd(end - m.index, '_'));
  }
  // `static DEFINE_RATELIMIT_STATE(rs, a, b);` declares `rs`: keep `DEFINE_X(rs)` so it parses as one.
  for (const m of src.matchAll(/\b(?<macro>(?:DEFINE|DECLARE)_[A-Z0-9_]+)[ \t]*\([ \t]*\w+[ \t]*(?=,)/g)) {
    if (TYPE_FIRST_MACROS.has(m.groups!.macro!) || m.groups!.macro === 'DECLARE_BITMAP') continue;
    const comma = m.index + m[0].length;
    const end = matchParen(src, src.indexOf('(', m.index));
    if (end < 0) continue;
    blank(buf, comma, end - 1);
  }
}

function blankCaseRanges(src: string, buf: Uint16Array): void {
  for (const m of src.matchAll(/\bcase\b[^:\n;]*?(?<range>[ \t]*\.\.\.[ \t]*[^:\n;]+?)[ \t]*:/g)) {
    const range = m.groups!.range!;
    const at = m.index + m[0].indexOf(range);
    blank(buf, at, at + range.length);
  }
}

const NOT_MACRO_STATEMENT = new Set(['if', 'while', 'for', 'switch', 'return', 'sizeof', 'do', 'else', 'case', 'goto', 'typeof', '__typeof__', 'defined']);

/**
 * Turn statement-position loop macros (`list_for_each_entry(p, h, m) {`, `for_each_set_bit(...)`,
 * `scoped_guard(mutex, &l) {`) into `while (p, h, m) {` by overwriting the macro name. tree-sitter
 * otherwise parses them as an expression statement with a MISSING `;` and a detached body; a
 * comma-expression `while` keeps every argument as an expression and attaches the body, including
 * single-statement bodies and `else list_for_each_entry(...)`. The model reads the real macro name
 * back from the original source at the statement's offset.
 */
function rewriteLoopMacros(src: string, buf: Uint16Array): void {
  // One entry per open brace: a function or statement block, an initializer, or a type body.
  const blocks: ('block' | 'init' | 'type')[] = [];
  let prev = ';';
  let prevWord = '';
  const n = src.length;
  let i = 0;
  while (i < n) {
    const c = src[i]!;
    if (c === '/' && src[i + 1] === '*') {
      const end = src.indexOf('*/', i + 2);
      i = end < 0 ? n : end + 2;
      continue;
    }
    if (c === '/' && src[i + 1] === '/') {
      const end = src.indexOf('\n', i);
      i = end < 0 ? n : end;
      continue;
    }
    if (c === '#' && lineStartsAt(src, i)) {
      // Preprocessor line, with backslash continuations.
      let j = i;
      while (j < n && !(src[j] === '\n' && src[j - 1] !== '\\')) j++;
      i = j;
      continue;
    }
    if (c === '"' || c === "'") {
      let j = i + 1;
      while (j < n && src[j] !== c && src[j] !== '\n') j += src[j] === '\\' ? 2 : 1;
      i = j + 1;
      prev = c;
      prevWord = '';
      continue;
    }
    if (/[A-Za-z_]/.test(c)) {
      let j = i + 1;
      while (j < n && /\w/.test(src[j]!)) j++;
      const word = src.slice(i, j);
      if (blocks[blocks.length - 1] === 'block' && word.length >= 5 && !NOT_MACRO_STATEMENT.has(word) && (';{}:)'.includes(prev) || prevWord === 'else')) {
        let k = j;
        while (k < n && (src[k] === ' ' || src[k] === '\t')) k++;
        if (src[k] === '(') {
          const close = matchParen(src, k);
          const args = src.slice(k + 1, close - 1).trim();
          // `T (*fp)(...)` declares a function pointer; empty arguments cannot become a condition.
          if (close > 0 && args !== '' && !args.startsWith('*') && startsStatement(src, close)) {
            overwrite(buf, i, 'while'.padEnd(word.length, ' '));
          }
        }
      }
      prev = 'w';
      prevWord = word;
      i = j;
      continue;
    }
    if (c === '{') {
      // Braces after `=` (or nested in an initializer) open an initializer, where a macro is data.
      const inInit = prev === '=' || (blocks[blocks.length - 1] === 'init' && (prev === ',' || prev === '{'));
      blocks.push(inInit ? 'init' : blocks.length === 0 && prev !== ')' ? 'type' : 'block');
    } else if (c === '}') blocks.pop();
    if (c !== ' ' && c !== '\t' && c !== '\n' && c !== '\r') {
      prev = c;
      prevWord = '';
    }
    i++;
  }
}

/** True when only blanks precede offset `i` on its line. */
function lineStartsAt(src: string, i: number): boolean {
  for (let j = i - 1; j >= 0; j--) {
    const c = src[j];
    if (c === '\n') return true;
    if (c !== ' ' && c !== '\t') return false;
  }
  return true;
}

/** True when the code after offset `at` (skipping blanks and comments) begins a block or statement. */
function startsStatement(src: string, at: number): boolean {
  let i = at;
  for (;;) {
    while (i < src.length && /\s/.test(src[i]!)) i++;
    if (src.startsWith('/*', i)) {
      const end = src.indexOf('*/', i + 2);
      if (end < 0) return false;
      i = end + 2;
      continue;
    }
    if (src.startsWith('//', i)) {
      const end = src.indexOf('\n', i);
      if (end < 0) return false;
      i = end;
      continue;
    }
    break;
  }
  const c = src[i];
  // Not `(`: `guard(mutex)(&l);` is a call of a call, not a loop macro with a body.
  if (c === '{' || c === '*') return true;
  if ((c === '+' || c === '-') && src[i + 1] === c) return true;
  return c !== undefined && /[A-Za-z_]/.test(c);
}

/**
 * Rewrite kernel C so that tree-sitter-c parses it, without moving any character: the result has
 * the same length and the same newlines as `source`. Returns the lock annotations and macro-defined
 * globals found on the way (the annotations are blanked, but the lock rules need them).
 */
export function prefilter(source: string): PrefilterResult {
  // UTF-16 code units, edited in place: the text keeps its length by construction.
  const buf = new Uint16Array(source.length);
  for (let i = 0; i < source.length; i++) buf[i] = source.charCodeAt(i);
  const annotations: LockAnnotation[] = [];
  const macroGlobals: MacroGlobal[] = [];
  blankAttributes(source, buf, annotations);
  dropStatements(source, buf);
  rewriteTypeArguments(source, buf);
  rewriteDeclarators(source, buf, macroGlobals);
  rewriteTypeofAndDefines(source, buf);
  blankCaseRanges(source, buf);
  rewriteLoopMacros(source, buf);
  return { text: new TextDecoder('utf-16le').decode(buf), annotations, macroGlobals };
}
