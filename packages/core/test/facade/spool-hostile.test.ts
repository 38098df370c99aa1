/**
 * Files in a spool directory that no Latch wrote: a FIFO or a symlink named like a segment.
 * A drain must neither hang on one (start-up waits for the first drain, and record() waits for
 * start-up) nor copy the file a symlink points to into the spool.
 */
import { execFileSync } from "node:child_process";
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Spool, type SpoolSetAside } from "../../src/facade/spool.js";

let root: string;
let dir: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "latch-spool-hostile-"));
  dir = join(root, "spool");
  await mkdir(dir);
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const line = (id: string) => `${JSON.stringify({ v: 1, observation: { id } })}\n`;

async function drain(spool: Spool) {
  const stored: string[] = [];
  const asides: SpoolSetAside[] = [];
  const report = await spool.drain(
    async (observation) => {
      stored.push((observation as { id: string }).id);
      return "stored";
    },
    (aside) => asides.push(aside),
  );
  return { report, stored, asides };
}

/** Every byte of every regular file under rejected/ (a moved link is not followed). */
async function rejectedText(): Promise<string> {
  const names = await readdir(join(dir, "rejected")).catch(() => [] as string[]);
  let text = "";
  for (const name of names) {
    const path = join(dir, "rejected", name);
    if ((await lstat(path)).isFile()) text += await readFile(path, "utf8");
  }
  return text;
}

describe("Spool: files no Latch wrote", () => {
  it("a FIFO named like a segment is set aside unread; the drain finishes and replays the real segments", async () => {
    execFileSync("mkfifo", [join(dir, "seg_fifo.jsonl")]);
    await writeFile(join(dir, "seg_real.jsonl"), line("a") + line("b"));
    const { report, stored, asides } = await drain(new Spool({ dir }));
    expect(stored.sort()).toEqual(["a", "b"]);
    expect(report.setAside).toBe(1);
    expect(asides.map((a) => a.segment)).toEqual(["seg_fifo.jsonl"]);
    expect((await readdir(dir)).filter((n) => n !== "rejected")).toEqual([]);
  }, 20_000);

  it("a symlink named like a segment is set aside as a link: the file it points to is neither read into the spool nor touched", async () => {
    const secret = join(root, "secret.txt");
    await writeFile(secret, "SECRET-CONTENT\n");
    await symlink(secret, join(dir, "seg_link.jsonl"));
    const { report, stored } = await drain(new Spool({ dir }));
    expect(stored).toEqual([]);
    expect(report.setAside).toBe(1);
    expect(await rejectedText()).not.toContain("SECRET-CONTENT");
    const moved = await readdir(join(dir, "rejected"));
    expect(moved).toHaveLength(1);
    expect((await lstat(join(dir, "rejected", moved[0] as string))).isSymbolicLink()).toBe(true);
    expect(await readFile(secret, "utf8")).toBe("SECRET-CONTENT\n");
    expect((await readdir(dir)).filter((n) => n !== "rejected")).toEqual([]);
  });
});
