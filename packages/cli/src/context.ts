/** What every command gets from the entry point: the interrupt signal and the streams. */
export interface CliContext {
  /** Aborted on the first SIGINT/SIGTERM: commands stop, remove partial files and exit 130. */
  signal: AbortSignal;
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  env: NodeJS.ProcessEnv;
}
