/**
 * Exit codes of `dr` (documented in README.md, "Exit codes"). Every failure maps to exactly one.
 */
export const ExitCode = {
  ok: 0,
  /** the operation failed (or `dr status` found problems) */
  failed: 1,
  /** bad command line or configuration: nothing was done */
  usage: 2,
  /** another backup/restore/prune holds the lock: nothing was done */
  lockHeld: 3,
  /** a verification found a difference */
  verifyFailed: 4,
  /** part of the work succeeded, part failed (e.g. one destination of two) */
  partial: 5,
  /** a required service is unreachable (Docker engine) */
  unavailable: 6,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** An error meant for the operator: the message names what is wrong; `hint` says what to do. */
export class DrError extends Error {
  readonly exitCode: ExitCodeValue;
  readonly hint: string | undefined;
  constructor(message: string, exitCode: ExitCodeValue = ExitCode.failed, hint?: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'DrError';
    this.exitCode = exitCode;
    this.hint = hint;
  }
}

/** A verification found a difference (exit 4): a part, an entry or a table that does not match the manifest. */
export class CheckError extends DrError {
  constructor(message: string, hint?: string) {
    super(message, ExitCode.verifyFailed, hint);
    this.name = 'CheckError';
  }
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
