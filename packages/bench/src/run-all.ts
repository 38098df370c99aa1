/**
 * `pnpm bench`: runs every benchmark in its own process, one after another (so none disturbs
 * another), shows their output, and ends with one table of every figure beside its peer or raw
 * ceiling from the same run, with the ratio and the target where one is set.
 *
 * `BENCH_ONLY=rating,s3` runs a subset. `BENCH_TABLE=path` also writes the table (Markdown)
 * to a file.
 */
import { spawn } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { cpus, totalmem } from "node:os";
import { fileURLToPath } from "node:url";
import { type BenchRow, ROW_PREFIX } from "./report.js";

const BENCHES = [
  "rating",
  "record",
  "record-postgres",
  "gateway",
  "redis",
  "postgres",
  "reports",
  "s3",
  "cli-rate",
  "credits",
];
const only = process.env.BENCH_ONLY?.split(",").filter(Boolean);
const selected = only ? BENCHES.filter((b) => only.includes(b)) : BENCHES;

function run(name: string): Promise<{ rows: BenchRow[]; code: number; seconds: number }> {
  const file = fileURLToPath(new URL(`./${name}.bench.ts`, import.meta.url));
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "--conditions=dev-source", file], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    const rows: BenchRow[] = [];
    let pending = "";
    child.stdout.on("data", (chunk: Buffer) => {
      pending += chunk.toString("utf8");
      let nl = pending.indexOf("\n");
      while (nl !== -1) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        if (line.startsWith(ROW_PREFIX)) rows.push(JSON.parse(line.slice(ROW_PREFIX.length)) as BenchRow);
        else process.stdout.write(`${line}\n`);
        nl = pending.indexOf("\n");
      }
    });
    child.on("error", reject);
    child.on("exit", (code) =>
      resolve({ rows, code: code ?? 1, seconds: (performance.now() - started) / 1_000 }),
    );
  });
}

const all: BenchRow[] = [];
const failed: string[] = [];
const started = performance.now();
for (const name of selected) {
  console.log(`\n━━ ${name}.bench.ts ━━`);
  const { rows, code, seconds } = await run(name);
  console.log(`(${name}: ${seconds.toFixed(0)} s)`);
  if (code !== 0) failed.push(name);
  all.push(...rows);
}
const minutes = (performance.now() - started) / 60_000;

const header = ["area", "metric", "Latch", "against (same run)", "its figure", "ratio", "target"];
const lines = [
  `| ${header.join(" | ")} |`,
  `|${header.map(() => "---").join("|")}|`,
  ...all.map(
    (r) =>
      `| ${r.area} | ${r.metric} | ${r.latch} | ${r.against} | ${r.againstValue} | ${r.ratio} | ${
        r.target === undefined ? "" : `${r.target} ${r.met ? "✓" : "✗"}`
      } |`,
  ),
];
const machine = `${cpus().length} × ${cpus()[0]?.model.trim() ?? "CPU"}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
const table = [
  `pnpm bench — ${new Date().toISOString().slice(0, 10)}, ${machine}, ${minutes.toFixed(1)} min`,
  "",
  ...lines,
].join("\n");
console.log(`\n${table}\n`);
if (process.env.BENCH_TABLE) await writeFile(process.env.BENCH_TABLE, `${table}\n`);
if (failed.length > 0) {
  console.error(`benchmarks that failed: ${failed.join(", ")}`);
  process.exitCode = 1;
}
