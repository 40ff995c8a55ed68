// copy-assets.mjs — the build's second step: files tsc does not emit (the dashboard page) go next to their module.
import { copyFileSync, mkdirSync } from 'node:fs';

mkdirSync('dist/src/observe', { recursive: true });
copyFileSync('src/observe/dashboard.html', 'dist/src/observe/dashboard.html');
