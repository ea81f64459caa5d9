// One error type for everything a user can cause: bad files, bad flags, full disks.
// Its message names the file, the value and the limit, and ends with what to do next.

export class QtkError extends Error {
  override name = 'QtkError';
  readonly userFacing = true;
  /** The file the problem is in, when there is one. */
  readonly file?: string;
  constructor(message: string, options?: { file?: string; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.file = options?.file;
  }
}

/** Builds "<file>: <problem>. <next step>" consistently. */
export function fileError(file: string, problem: string, nextStep: string, cause?: unknown): QtkError {
  return new QtkError(`${file}: ${problem}. ${nextStep}`, { file, cause });
}
