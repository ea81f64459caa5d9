// One interrupt policy for every long command: on SIGINT or SIGTERM run the registered cleanups
// once (remove a temp output, write a checkpoint), print one line, exit 130 (SIGINT) or 143
// (SIGTERM), the codes a shell gives a process killed by those signals. A second signal during
// cleanup exits at once.

export type InterruptSignal = 'SIGINT' | 'SIGTERM';
/** A cleanup; it may return a few words on what it did ("removed the partial model.gguf"). */
export type InterruptCleanup = (signal: InterruptSignal) => Promise<string | void> | string | void;

export const INTERRUPT_EXIT_CODES = { SIGINT: 130, SIGTERM: 143 } as const satisfies Record<InterruptSignal, number>;

interface SignalSource {
  on(event: InterruptSignal, listener: () => void): unknown;
  removeListener(event: InterruptSignal, listener: () => void): unknown;
}

export interface InterruptPolicyDeps {
  source: SignalSource;
  exit: (code: number) => void;
  log: (line: string) => void;
}

interface Entry { cleanup: InterruptCleanup; what: string }

/** The policy with its process, exit and log passed in; `onInterrupt` uses the real ones. */
export function createInterruptPolicy(deps: InterruptPolicyDeps) {
  const entries = new Set<Entry>();
  let handling: InterruptSignal | null = null;
  const listeners = {
    SIGINT: () => void handle('SIGINT'),
    SIGTERM: () => void handle('SIGTERM'),
  } as const;

  async function handle(signal: InterruptSignal): Promise<void> {
    if (handling) {
      deps.exit(INTERRUPT_EXIT_CODES[signal]);
      return;
    }
    handling = signal;
    const running = [...entries].reverse();
    entries.clear();
    const notes: string[] = [];
    for (const e of running) {
      try {
        const note = await e.cleanup(signal);
        if (note) notes.push(note);
      } catch (err) {
        notes.push(`cleanup of ${e.what} failed: ${(err as Error)?.message ?? String(err)}`);
      }
    }
    const whats = running.map((e) => e.what).join(', ') || 'qtk';
    deps.log(`qtk: ${whats} interrupted (${signal}); ${notes.length ? notes.join('; ') : running.length ? 'partial output removed' : 'nothing was written'}.`);
    deps.exit(INTERRUPT_EXIT_CODES[signal]);
  }

  function install(): void {
    deps.source.on('SIGINT', listeners.SIGINT);
    deps.source.on('SIGTERM', listeners.SIGTERM);
  }
  function uninstall(): void {
    deps.source.removeListener('SIGINT', listeners.SIGINT);
    deps.source.removeListener('SIGTERM', listeners.SIGTERM);
  }

  return function onInterrupt(cleanup: InterruptCleanup, what: string): () => void {
    const entry: Entry = { cleanup, what };
    if (entries.size === 0 && handling === null) install();
    entries.add(entry);
    return () => {
      if (!entries.delete(entry)) return;
      if (entries.size === 0 && handling === null) uninstall();
    };
  };
}

/**
 * Registers a cleanup for SIGINT/SIGTERM while long work runs; returns `off`, to call (in a
 * `finally`) when the work is done. `what` names the work in the one-line message ("quantize").
 */
export const onInterrupt = createInterruptPolicy({
  source: process,
  exit: (code) => process.exit(code),
  log: (line) => process.stderr.write(`${line}\n`),
});
