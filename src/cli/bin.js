#!/usr/bin/env node
// Thin launcher: the sources are TypeScript run through tsx's loader, so there is
// no build step between `npm ci` and a working command.
import { register } from 'tsx/esm/api';

// `vfio-review series | head` closes the pipe early; that is not an error.
process.stdout.on('error', (err) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});
register();
const { main } = await import('./main.ts');
process.exitCode = await main(process.argv.slice(2));
