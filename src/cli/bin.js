#!/usr/bin/env node
// Thin launcher: the sources are TypeScript run through tsx's loader, so there is
// no build step between `npm ci` and a working command.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('./main.ts');
process.exitCode = await main(process.argv.slice(2));
