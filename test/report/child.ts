// The reporter CLI in a child process, for the crash tests (SIGKILL at a named point, then restart).
// Not a test file: vitest only collects *.test.ts.
import { run } from '../../src/cli/report.js';

process.exitCode = await run(process.argv.slice(2));
