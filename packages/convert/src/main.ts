// `qtk convert` as a library call: plan, print notices, then either print the plan (--dry-run) or write.
import { promises as fs } from 'node:fs';
import { QtkError } from '@qtk/core';
import { planConversion, type ConvertOptions } from './plan.js';
import { writePlan } from './convert.js';
import { fmtBytes, formatPlan } from './dry-run.js';

export interface ConvertMainArgs extends ConvertOptions {
  dryRun?: boolean;
  /** Where the summary goes (default stdout). */
  out?: (line: string) => void;
}

export async function convertMain(args: ConvertMainArgs): Promise<void> {
  const out = args.out ?? ((l: string) => process.stdout.write(`${l}\n`));
  const log = args.log ?? ((l: string) => process.stderr.write(`qtk convert: ${l}\n`));
  const plan = await planConversion(args);
  try {
    // Refuse before any notice, so a refusal is the only line printed.
    if (!args.dryRun && !args.force && (await fs.stat(plan.output).then(() => true, () => false))) {
      throw new QtkError(`${plan.output}: already exists. Pass --force to overwrite it, or choose another output path.`, { file: plan.output });
    }
    for (const n of plan.notices) log(n);
    if (args.dryRun) {
      out(formatPlan(plan));
      if (!args.force && (await fs.stat(plan.output).then(() => true, () => false))) out(`note: ${plan.output} exists; a real run needs --force to replace it`);
      return;
    }
    const r = await writePlan(plan, { force: args.force });
    const mbps = plan.inputBytes / 1e6 / Math.max(r.seconds, 1e-9);
    out(`wrote ${r.output} (${fmtBytes(r.bytes)}, ${plan.tensorPlan.tensors.length} tensors, ${plan.arch.ggufArch}, ${plan.outtype}) in ${r.seconds.toFixed(1)} s, ${mbps.toFixed(0)} MB/s`);
  } finally {
    await plan.checkpoint.close();
  }
}
