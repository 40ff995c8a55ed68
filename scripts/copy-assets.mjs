// copy-assets.mjs — the build's second step: files tsc does not emit (the dashboard page) go next to their module.
import { chmodSync, copyFileSync, mkdirSync } from 'node:fs';

mkdirSync('dist/src/observe', { recursive: true });
copyFileSync('src/observe/dashboard.html', 'dist/src/observe/dashboard.html');
// The CLI runs through its shebang (`npx portlab`, ./dist/src/cli/main.js), which carries portlab's Node flags.
chmodSync('dist/src/cli/main.js', 0o755);
