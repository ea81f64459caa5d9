import { QtkError, enumArg, intArg, numberArg, sizeArg, stringArg } from '@qtk/core';
import type { QtkCommand } from '../command.js';

const BITS = ['8', '6', '5', '4', '3', '2'] as const;

const PRESET_NAMES = ['Q8_0', 'Q6_K', 'Q5_K_M', 'Q5_K_S', 'Q4_K_M', 'Q4_K_S', 'Q3_K_L', 'Q3_K_M', 'Q3_K_S', 'Q2_K', 'IQ4_XS', 'IQ4_NL', 'Q4_0', 'Q5_0'];

export const quantizeCommand: QtkCommand = {
  command: 'quantize <input> [output]',
  describe: 'Quantize a GGUF with llama-quantize\'s presets and per-tensor rules (bit-exact with ggml)',
  builder: (y) =>
    y
      .positional('input', { type: 'string', describe: 'an F16/BF16/F32 GGUF (from qtk convert)', demandOption: true })
      .positional('output', { type: 'string', describe: 'output .gguf (default: <input stem>-<PRESET>.gguf beside the input)' })
      .option('bits', { type: 'string', describe: '8→Q8_0, 6→Q6_K, 5→Q5_K_M, 4→Q4_K_M, 3→Q3_K_M, 2→Q2_K' })
      .option('type', { type: 'string', describe: `preset: ${PRESET_NAMES.join(', ')}` })
      .option('imatrix', { type: 'string', describe: 'importance matrix from llama-imatrix (GGUF or legacy .dat)' })
      .option('tensor-type', { type: 'string', array: true, describe: 'PATTERN=TYPE: tensors whose name matches the regex get TYPE (repeatable)' })
      .option('output-tensor-type', { type: 'string', describe: 'type for output.weight' })
      .option('token-embedding-type', { type: 'string', describe: 'type for token_embd.weight' })
      .option('threads', { type: 'string', describe: 'worker threads (default: all cores)' })
      .option('allow-requantize', { type: 'boolean', default: false, describe: 'allow quantizing tensors that are already quantized (quality suffers)' })
      .option('leave-output-tensor', { type: 'boolean', default: false, describe: 'keep output.weight unquantized' })
      .option('pure', { type: 'boolean', default: false, describe: 'use the preset\'s base type for every tensor (no bumps)' })
      .option('force', { type: 'boolean', default: false, describe: 'overwrite an existing output file' })
      .option('method', { type: 'string', choices: ['rtn', 'gptq'], default: 'rtn', describe: 'rounding inside each tensor: rtn (llama-quantize\'s) or gptq (Hessian error feedback, needs --calib)' })
      .option('calib', { type: 'string', describe: 'gptq: calibration text file or qtk dataset folder' })
      .option('calib-tokens', { type: 'string', describe: 'gptq: calibration tokens (default 32768)' })
      .option('damp', { type: 'string', describe: 'gptq: damping, fraction of mean diag(H) (default 0.01)' })
      .option('block', { type: 'string', describe: 'gptq: columns per lazy batch (default 128)' })
      .option('act-order', { type: 'boolean', default: false, describe: 'gptq: visit blocks and columns by decreasing diag(H)' })
      .option('gptq-solver', { type: 'string', describe: 'gptq: fast (ggml matrix products, default) or reference (the f64 TypeScript reference, one row at a time)' })
      .option('fit', { type: 'string', describe: 'choose each tensor\'s type to fit this size (e.g. 14GiB) with the least measured error' })
      .option('ctx', { type: 'string', describe: 'with --fit: also keep room for the KV cache, state and compute buffer at this context' }),
  run: async (args) => {
    const bits = enumArg('bits', args.bits, BITS);
    const threads = intArg('threads', args.threads, { min: 1, max: 1024 });
    const { quantizeMain, fitMain } = await import('@qtk/quantize');
    // `output` is the positional [output]; the others are --flags of the same name
    const str = (k: string) => stringArg(k === 'output' ? '<output>' : k, args[k]);
    if (args.fit !== undefined) {
      await fitMain({
        input: String(args.input), output: str('output'), budget: sizeArg('fit', args.fit)!, ctx: intArg('ctx', args.ctx, { min: 1, max: 16_777_216 }),
        imatrix: str('imatrix'), threads, force: Boolean(args.force), preset: str('type'), bits: bits === undefined ? undefined : Number(bits),
      });
      return;
    }
    if (args.ctx !== undefined) throw new QtkError('--ctx applies to --fit only. Add --fit SIZE or leave out --ctx');
    await quantizeMain({
      input: String(args.input),
      output: str('output'),
      bits: bits === undefined ? undefined : Number(bits),
      preset: str('type'),
      imatrix: str('imatrix'),
      tensorTypes: (args['tensor-type'] as string[] | undefined) ?? [],
      outputTensorType: str('output-tensor-type'),
      tokenEmbeddingType: str('token-embedding-type'),
      threads,
      allowRequantize: Boolean(args['allow-requantize']),
      leaveOutputTensor: Boolean(args['leave-output-tensor']),
      pure: Boolean(args.pure),
      force: Boolean(args.force),
      method: enumArg('method', args.method, ['rtn', 'gptq'] as const),
      calib: str('calib'),
      tokens: intArg('calib-tokens', args['calib-tokens'], { min: 16 }),
      damp: numberArg('damp', args.damp, { min: 0, max: 10 }),
      block: intArg('block', args.block, { min: 1, max: 65536 }),
      actOrder: Boolean(args['act-order']),
      solver: enumArg('gptq-solver', args['gptq-solver'], ['fast', 'reference'] as const),
    });
  },
};
