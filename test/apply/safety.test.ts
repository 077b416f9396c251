import { describe, expect, it } from 'vitest';
import { checkPatch, DEFAULT_LIMITS, parseDiff, pathProblem } from '../../src/apply/safety.js';
import { parseApplyFailure } from '../../src/apply/apply.js';

const modify = `diff --git a/drivers/vfio/vfio_main.c b/drivers/vfio/vfio_main.c
index 0123456..89abcde 100644
--- a/drivers/vfio/vfio_main.c
+++ b/drivers/vfio/vfio_main.c
@@ -10,7 +10,8 @@ static int vfio_thing(void)
 	int a;
-	int b;
+	int b = 0;
+	int c;
 
-- 
 	return a;
 }
@@ -40 +41 @@
-x
+y
\\ No newline at end of file
-- 
2.43.0
`;

describe('parseDiff', () => {
  it('reads hunks by their counts, so a removed "-- " line is not a signature', () => {
    const [f] = parseDiff(modify).files;
    expect(f).toMatchObject({ oldPath: 'drivers/vfio/vfio_main.c', newPath: 'drivers/vfio/vfio_main.c', change: 'modified', oldMode: '100644' });
    expect(f!.hunks.map((h) => [h.header, h.section, h.added, h.removed])).toEqual([
      ['@@ -10,7 +10,8 @@', 'static int vfio_thing(void)', ['\tint b = 0;', '\tint c;'], ['\tint b;', '- ']],
      ['@@ -40 +41 @@', '', ['y'], ['x']],
    ]);
    expect(f!.hunks[1]!.lines).toEqual(['-x', '+y', '\\ No newline at end of file']);
  });

  it('reads renames, copies, mode changes, deletions and quoted names', () => {
    const diff = [
      'diff --git a/old/name.c b/new/name.c',
      'similarity index 90%',
      'rename from old/name.c',
      'rename to new/name.c',
      'diff --git a/x.sh b/x.sh',
      'old mode 100644',
      'new mode 100755',
      'diff --git a/gone.h b/gone.h',
      'deleted file mode 100644',
      'index 1234567..0000000',
      '--- a/gone.h',
      '+++ /dev/null',
      '@@ -1 +0,0 @@',
      '-#define GONE',
      'diff --git "a/sp ace\\303\\244.txt" "b/sp ace\\303\\244.txt"',
      'new file mode 100644',
      '--- /dev/null',
      '+++ "b/sp ace\\303\\244.txt"',
      '@@ -0,0 +1 @@',
      '+hi',
      '',
    ].join('\n');
    const files = parseDiff(diff).files.map((f) => [f.change, f.oldPath, f.newPath, f.oldMode, f.newMode]);
    expect(files).toEqual([
      ['renamed', 'old/name.c', 'new/name.c', null, null],
      ['mode', 'x.sh', 'x.sh', '100644', '100755'],
      ['deleted', 'gone.h', null, '100644', null],
      ['added', null, 'sp aceä.txt', null, '100644'],
    ]);
    expect(checkPatch(diff).ok).toBe(true);
  });

  it('reads a traditional (non-git) diff', () => {
    const { files } = parseDiff('--- linux.orig/a.c\t2024-01-01\n+++ linux/a.c\t2024-01-02\n@@ -1 +1 @@\n-a\n+b\n');
    expect(files).toMatchObject([{ oldPath: 'a.c', newPath: 'a.c', change: 'modified', hunks: [{ added: ['b'], removed: ['a'] }] }]);
  });
});

describe('pathProblem', () => {
  it.each([
    ['drivers/vfio/pci/vfio_pci_core.c', null],
    ['a/../b', "'..' component"],
    ['..', "'..' component"],
    ['/etc/passwd', 'absolute path'],
    ['.git/config', "'.git' component"],
    ['x/.GIT/hooks/pre-commit', "'.git' component"],
    ['x/.git./config', "'.git' component"],
    ['x/.git /config', "'.git' component"],
    ['GIT~1/config', "'.git' component"],
    ['.g\u200cit/config', "'.git' component"],
    ['.gitignore', null],
    ['Documentation/.gitignore', null],
    ['a\nb', 'control character in path'],
  ])('%j -> %s', (path, want) => {
    expect(pathProblem(path)).toBe(want);
  });
});

describe('checkPatch', () => {
  it('accepts an ordinary patch and returns its files', () => {
    const v = checkPatch(modify);
    expect(v.ok).toBe(true);
    expect(v.files).toHaveLength(1);
  });

  it('checks the stripped path of prefixed headers and the raw path of rename lines', () => {
    expect(checkPatch('--- a/x\n+++ b/.git/x\n@@ -1 +1 @@\n-a\n+b\n')).toMatchObject({ ok: false, reason: /'\.git' component: "b\/\.git\/x" \(\+\+\+\)/ });
    expect(checkPatch('diff --git a/x b/y\nrename from x\nrename to ../y\n')).toMatchObject({ ok: false, reason: /'\.\.' component/ });
    expect(checkPatch('diff --git a/x b/x\ncopy from x\ncopy to .git/hooks/x\n')).toMatchObject({ ok: false, reason: /'\.git' component/ });
  });

  it('refuses modes that are not regular files', () => {
    expect(checkPatch('diff --git a/x b/x\nold mode 100644\nnew mode 040000\n')).toMatchObject({ ok: false, reason: /unexpected file mode 040000/ });
    expect(checkPatch('diff --git a/x b/x\ndeleted file mode 120000\n')).toMatchObject({ ok: false, reason: /symlink/ });
  });

  it('counts files against the limit and measures size before parsing', () => {
    const two = 'diff --git a/x b/x\nold mode 100644\nnew mode 100755\ndiff --git a/y b/y\nold mode 100644\nnew mode 100755\n';
    expect(checkPatch(two, { ...DEFAULT_LIMITS, maxFiles: 1 })).toMatchObject({ ok: false, reason: 'patch touches 2 files, more than 1' });
    expect(checkPatch(two, { ...DEFAULT_LIMITS, maxPatchBytes: 10 })).toMatchObject({ ok: false, files: [] });
  });

  it('refuses binary data it cannot decode', () => {
    const bad = 'diff --git a/b.bin b/b.bin\nindex 1111111..2222222 100644\nGIT binary patch\ndelta 10\nZ!!!!\n\n';
    expect(checkPatch(bad)).toMatchObject({ ok: false, reason: /malformed binary patch data/ });
  });
});

describe('parseApplyFailure', () => {
  it('takes file, hunk and context from git apply -v', () => {
    const files = parseDiff(modify).files;
    const stderr = [
      'Checking patch drivers/vfio/vfio_main.c...',
      'error: while searching for:',
      '\tint a;',
      '\tint b;',
      '',
      '',
      'error: patch failed: drivers/vfio/vfio_main.c:10',
      'error: drivers/vfio/vfio_main.c: patch does not apply',
      '',
    ].join('\n');
    expect(parseApplyFailure(stderr, files)).toEqual({
      file: 'drivers/vfio/vfio_main.c',
      hunk: '@@ -10,7 +10,8 @@',
      context: '\tint a;\n\tint b;\n',
      detail: 'patch failed: drivers/vfio/vfio_main.c:10; drivers/vfio/vfio_main.c: patch does not apply',
    });
  });

  it('names the file of other errors', () => {
    expect(parseApplyFailure('error: drivers/x.c: does not exist in index\n', [])).toEqual({
      file: 'drivers/x.c',
      detail: 'drivers/x.c: does not exist in index',
    });
  });
});
