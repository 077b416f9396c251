import { describe, expect, it } from 'vitest';
import { checkPatch, parseDiff } from '../../src/apply/safety.js';

/**
 * Regression found by the robustness campaign (test/robustness): git apply strips exactly one
 * leading component with its slash, so `b//etc/passwd` is `/etc/passwd` to git. The checks
 * stripped the whole run of slashes, saw `etc/passwd`, and let the absolute path through to git.
 */
describe('-p1 with a doubled slash', () => {
  it('rejects the absolute path git would see', () => {
    const diff = 'diff --git a//etc/passwd b//etc/passwd\nnew file mode 100644\n--- /dev/null\n+++ b//etc/passwd\n@@ -0,0 +1 @@\n+x\n';
    expect(checkPatch(diff)).toMatchObject({ ok: false, reason: 'absolute path: "a//etc/passwd" (diff --git)' });
    expect(checkPatch('--- a//x\n+++ b//x\n@@ -1 +1 @@\n-a\n+b\n')).toMatchObject({ ok: false, reason: /^absolute path: "a\/\/x" \(---\)/ });
  });

  it('reads the names as git does', () => {
    expect(parseDiff('--- a//x\n+++ b/y//z\n@@ -1 +1 @@\n-a\n+b\n').files[0]).toMatchObject({ oldPath: '/x', newPath: 'y//z' });
  });
});
