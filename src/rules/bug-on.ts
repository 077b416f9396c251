import { defineRule } from './types.js';
import { enclosingFunction, stripCommentsAndStrings } from './util.js';

const BUG = /\b(?<macro>BUG_ON|BUG)\s*\(/g;

/** Driver code (where a bad state should fail one device, not the machine). */
function isDriverCode(path: string): boolean {
  return /^(?:drivers|virt\/kvm|samples)\/.*\.[ch]$/.test(path);
}

export const bugOn = defineRule({
  id: 'bug-on',
  meta: {
    input: 'text',
    severity: 'warning',
    category: 'robustness',
    confidence: 'high',
    description: 'A patch adds BUG_ON()/BUG() in driver code, where WARN_ON() plus an error return would recover',
    reviewers:
      'Maintainers ask for WARN_ON_ONCE() and a return of -EINVAL/-EIO instead: BUG_ON() kills the whole host ' +
      'for one device\'s inconsistent state, and checkpatch says the same ("Do not crash the kernel unless it is ' +
      'absolutely unavoidable").',
    falsePositives:
      'A state that truly cannot be recovered from (memory corruption in a core allocator) where halting is the ' +
      'point; rare in drivers/vfio and drivers/iommu.',
    messages: {
      added: '{{macro}}() added in {{fn}}: this crashes the host for a condition a driver can report; use WARN_ON_ONCE() and return an error',
    },
  },
  check(ctx) {
    for (const f of ctx.files) {
      if (!isDriverCode(f.path) || f.status === 'deleted') continue;
      const after = ctx.after(f.path);
      // Comments and strings never count; with no post-image, judge the added line alone.
      const clean = after !== null ? stripCommentsAndStrings(after).split('\n') : null;
      for (const [line, text] of f.addedText) {
        const code = clean ? (clean[line - 1] ?? '') : stripCommentsAndStrings(text);
        for (const m of code.matchAll(BUG)) {
          const fn = after ? enclosingFunction(after, line) : null;
          ctx.report({
            messageId: 'added',
            file: f.path,
            line,
            function: fn,
            data: { macro: m.groups!.macro!, fn: fn ? `${fn}()` : 'this code' },
            evidence: [text.trim()],
            suggestion: 'if (WARN_ON_ONCE(cond)) return -EINVAL;',
          });
        }
      }
    }
  },
});
