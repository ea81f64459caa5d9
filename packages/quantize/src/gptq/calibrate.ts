// What GPTQ calibration reads: the text, how much of it, in which windows. Both `qtk quantize --method gptq`
// and `qtk export gptq` calibrate true-sequentially through the engine (sequential.ts).

export interface CalibrationOptions {
  /** Text file, `qtk dataset build` folder or .arrow split. */
  calib: string;
  /** Calibration tokens (default 32768). */
  tokens?: number;
  /** Window length (default 512). */
  ctx?: number;
  threads?: number;
  /** Also collect output.weight's Hessian (default true; skipped when the output is tied to token_embd). */
  calibOutput?: boolean;
}
