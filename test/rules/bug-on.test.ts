import { bugOn } from '../../src/rules/bug-on.js';
import { runRuleTests } from '../helpers/rule-tester.js';

runRuleTests(bugOn, {
  valid: [
    {
      name: 'BUG_ON that was already there; WARN_ON, BUILD_BUG_ON, strings and comments added',
      before: 'int f(int x)\n{\n\tBUG_ON(x);\n\treturn 0;\n}\n',
      after: 'int f(int x)\n{\n\tBUG_ON(x);\n\tWARN_ON_ONCE(x > 1);\n\tBUILD_BUG_ON(sizeof(x) > 8);\n\tpr_err("BUG_ON(x)\\n"); /* BUG() */\n\treturn 0;\n}\n',
    },
    { name: 'removing a BUG_ON', before: 'void f(void)\n{\n\tBUG_ON(x);\n}\n', after: 'void f(void)\n{\n}\n' },
    { name: 'BUG_ON outside driver code (core mm)', path: 'mm/demo.c', before: 'void f(void)\n{\n}\n', after: 'void f(void)\n{\n\tBUG_ON(x);\n}\n' },
    { name: 'a documentation file mentioning BUG_ON', path: 'Documentation/vfio.rst', before: '', after: 'Never use BUG_ON(x) here.\n' },
  ],
  invalid: [
    { name: 'BUG_ON and BUG added in a driver, beside ok lines', fixture: 'bug-on.c', path: 'drivers/vfio/pci/demo.c' },
    {
      name: 'names the function',
      path: 'drivers/iommu/demo.c',
      before: 'static int f(int x)\n{\n\treturn x;\n}\n',
      after: 'static int f(int x)\n{\n\tBUG_ON(x < 0);\n\treturn x;\n}\n',
      findings: [{ line: 3, message: 'BUG_ON() added in f()' }],
    },
  ],
});
