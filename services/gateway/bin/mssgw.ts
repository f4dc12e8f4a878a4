#!/usr/bin/env node
// mssgw: runs on the project's Node 22 (npm scripts put node_modules/.bin first on PATH).
import '../src/cli.ts';
