// `qtk adapt` in a child process (the resume test kills it): node run-ts.mjs adapt-child.ts <model.gguf> <run dir>
import { adaptMain } from '../src/index.js';
import { ADAPT_FLAGS, ADAPT_REPO } from './fixture.js';

const [model, out] = process.argv.slice(2);
const err = (l: string) => process.stderr.write(l + '\n');
await adaptMain({ model, repo: ADAPT_REPO, out, flags: { ...ADAPT_FLAGS }, log: err, print: err });
