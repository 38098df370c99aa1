import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";

/** Rows of one Parquet object, counted by DuckDB. */
export async function duckCountParquet(bytes: Uint8Array): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), "latch-duck-"));
  try {
    const file = join(dir, "part.parquet");
    await writeFile(file, bytes);
    const db = await DuckDBInstance.create(":memory:");
    const c = await db.connect();
    const result = await c.runAndReadAll(`SELECT count(*)::INTEGER AS n FROM read_parquet('${file}')`);
    const n = (result.getRowObjects()[0] as { n: number }).n;
    c.closeSync();
    db.closeSync();
    return n;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
