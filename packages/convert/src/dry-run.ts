// The plan as a table: HF name → GGUF name, shape, dtype in → out, bytes; then the output size.
import type { ConversionPlan } from './plan.js';

const fmtBytes = (n: number) => (n >= 1e9 ? `${(n / 1e9).toFixed(2)} GB` : n >= 1e6 ? `${(n / 1e6).toFixed(2)} MB` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} kB` : `${n} B`);

export function formatPlan(plan: ConversionPlan): string {
  const rows = plan.tensorPlan.tensors.map((t) => {
    const ops = [t.rowPerm || t.colPerm ? 'reorder' : '', t.value === 'add_one' ? '+1' : t.value === 'neg_exp' ? '-exp' : '', t.fp8Scale ? 'fp8-dequant' : '']
      .filter(Boolean).join(',');
    return [t.hfName || '(generated)', t.ggufName, `[${t.ne.join(', ')}]`, `${t.srcDtype} → ${t.type}`, fmtBytes(t.bytes), ops];
  });
  const head = ['HF tensor', 'GGUF tensor', 'ne', 'dtype', 'bytes', 'transform'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  const { skipped, blockCount, nMtp } = plan.tensorPlan;
  return [
    `${plan.input} → ${plan.output}`,
    `architecture ${plan.arch.modelType} → ${plan.arch.ggufArch}, ${blockCount} blocks${nMtp ? ` (${nMtp} MTP)` : ''}, outtype ${plan.outtype}`,
    line(head),
    ...rows.map(line),
    `${rows.length} tensors, ${plan.metadata.length} metadata keys; skipped: ${skipped.vision.length} vision, ${skipped.mtp.length} MTP, ${skipped.unused.length} unused`,
    `output size ${fmtBytes(plan.fileSize)} (${plan.fileSize} bytes), reads ${fmtBytes(plan.inputBytes)}`,
  ].join('\n');
}

export { fmtBytes };
