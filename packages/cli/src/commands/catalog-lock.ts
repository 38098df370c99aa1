import { open, rm } from "node:fs/promises";
import { CommandError } from "../exit-codes.js";

/**
 * Runs `work` (read the catalog, update it, write it) holding `<catalog>.lock`, created with
 * `O_EXCL`. Two updates of one catalog at once would each read the same file and the last
 * rename would drop the other's snapshots and source; with the lock the second one fails
 * (exit 1) and changes nothing. A lock left by a killed process is not taken over: the
 * message says to remove it, so a crash can block later updates but never loses one.
 */
export async function withCatalogLock<T>(catalogPath: string, work: () => Promise<T>): Promise<T> {
  const lockPath = `${catalogPath}.lock`;
  try {
    const handle = await open(lockPath, "wx");
    try {
      await handle.writeFile(`${JSON.stringify({ pid: process.pid, since: new Date().toISOString() })}\n`);
    } finally {
      await handle.close();
    }
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === "EEXIST") {
      throw new CommandError(
        `prices update: ${lockPath} exists: another update of this catalog is running (if none is, one was killed: remove the file)`,
      );
    }
    throw new CommandError(`prices update: cannot create ${lockPath}${code ? ` (${code})` : ""}`, {
      cause: error,
    });
  }
  try {
    return await work();
  } finally {
    await rm(lockPath, { force: true });
  }
}
