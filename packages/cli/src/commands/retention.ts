import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { GetObjectCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { LatchError } from "@latch/core";
import { applyRetention, type RetentionResult } from "@latch/postgres";
import pg from "pg";
import type { CliContext } from "../context.js";
import { CommandError, UsageError } from "../exit-codes.js";
import { postgresOf } from "../stores.js";
import { exportDestination } from "./export.js";
import type { RetentionApplyFlags } from "./retention-command.js";

type Range = { firstSeq: string; lastSeq: string };

const MANIFEST = /(^|\/)latch\.billing-export\.v1\/_manifests\/[^/]+\.json$/;

function rangeOf(key: string, bytes: Uint8Array): Range {
  try {
    const m = JSON.parse(Buffer.from(bytes).toString("utf8")) as {
      cursor?: { firstSeq?: unknown; lastSeq?: unknown };
    };
    const { firstSeq, lastSeq } = m.cursor ?? {};
    if (typeof firstSeq === "string" && typeof lastSeq === "string") return { firstSeq, lastSeq };
  } catch {
    // reported below
  }
  throw new CommandError(`manifest ${key} is not a latch.billing-export.v1 manifest`);
}

/** The change-log ranges of every manifest under the export destination. */
async function manifestRanges(flags: RetentionApplyFlags, ctx: CliContext): Promise<Range[]> {
  const env = ctx.env;
  const destination = exportDestination(
    flags.to,
    env,
    "where the consumer exports: s3://bucket/prefix or a folder",
  );
  const ranges: Range[] = [];
  if (destination.kind === "dir") {
    let entries: string[];
    try {
      entries = await readdir(destination.path, { recursive: true });
    } catch (error) {
      throw new CommandError(`--to: cannot read ${destination.path}: ${(error as Error).message}`);
    }
    for (const entry of entries.map((e) => e.split("\\").join("/")).sort()) {
      if (MANIFEST.test(entry)) ranges.push(rangeOf(entry, await readFile(join(destination.path, entry))));
    }
    return ranges;
  }
  const endpoint = flags.s3Endpoint ?? env.S3_ENDPOINT ?? env.LATCH_S3_ENDPOINT;
  const region = flags.s3Region ?? env.S3_REGION ?? env.LATCH_S3_REGION ?? env.AWS_REGION ?? "us-east-1";
  const pathStyle = env.S3_FORCE_PATH_STYLE ?? (endpoint !== undefined ? "true" : "false");
  const client = new S3Client({
    region,
    forcePathStyle: pathStyle === "true" || pathStyle === "1",
    ...(endpoint !== undefined ? { endpoint } : {}),
  });
  try {
    const prefix = `${destination.prefix === "" ? "" : `${destination.prefix}/`}latch.billing-export.v1/_manifests/`;
    let token: string | undefined;
    do {
      const page = await client.send(
        new ListObjectsV2Command({ Bucket: destination.bucket, Prefix: prefix, ContinuationToken: token }),
      );
      for (const object of page.Contents ?? []) {
        const key = object.Key;
        if (key === undefined || !MANIFEST.test(key)) continue;
        const out = await client.send(new GetObjectCommand({ Bucket: destination.bucket, Key: key }));
        if (out.Body === undefined) throw new CommandError(`reading manifest ${key}: no body`);
        ranges.push(rangeOf(key, await out.Body.transformToByteArray()));
      }
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
    return ranges;
  } finally {
    client.destroy();
  }
}

function describe(result: RetentionResult, schema: string, dryRun: boolean): string {
  let out = `retention of schema ${schema}: months before ${result.before} (horizon now ${result.previousHorizon ?? "none"}), consumer ${result.consumer} at ${result.cursor ?? "no cursor"}, ${result.manifests} manifest(s)\n`;
  if (result.months.length === 0) return `${out}nothing to remove\n`;
  for (const m of result.months) {
    const state =
      m.refusals.length === 0 ? (dryRun ? `would be ${result.action}` : result.action) : "refused";
    out += `  ${m.month}: ${m.observations} observation(s), ${m.ratedRecords} rated record(s): ${state}\n`;
    for (const r of m.refusals) out += `    - ${r}\n`;
  }
  if (result.applied) out += `horizon set to ${result.before}; ${result.keysDeleted} key row(s) deleted\n`;
  else if (dryRun && result.months.every((m) => m.refusals.length === 0))
    out += "dry run: run again with --yes to remove them\n";
  else out += "nothing was removed\n";
  return out;
}

/**
 * `latch retention apply`: reads every manifest at `--to`, then asks `applyRetention` of
 * `@latch/postgres` to remove the months before `--before` (a dry run unless `--yes`). Exits 1
 * when a month is refused.
 */
export async function runRetentionApply(flags: RetentionApplyFlags, ctx: CliContext): Promise<void> {
  if (flags.before === undefined || !/^[0-9]{4}-(0[1-9]|1[0-2])$/.test(flags.before)) {
    throw new UsageError("--before: required, a month YYYY-MM");
  }
  const { url, schema } = postgresOf(flags, ctx.env);
  const manifests = await manifestRanges(flags, ctx);
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  pool.on("error", () => undefined);
  let result: RetentionResult;
  try {
    result = await applyRetention(pool, {
      schema,
      before: flags.before,
      consumer: flags.consumer,
      manifests,
      dryRun: !flags.yes,
      keepDetached: flags.keepDetached,
    });
  } catch (error) {
    if (LatchError.isInstance(error) && error.code === "invalid_input")
      throw new CommandError(`retention: ${error.message}`);
    throw new CommandError(`retention: ${(error as Error).message}`, { cause: error });
  } finally {
    await pool.end();
  }
  ctx.stdout.write(
    flags.json
      ? `${JSON.stringify({ schema, dryRun: !flags.yes, ...result })}\n`
      : describe(result, schema, !flags.yes),
  );
  if (result.months.some((m) => m.refusals.length > 0)) {
    throw new CommandError(
      `retention: ${result.months.filter((m) => m.refusals.length > 0).length} month(s) refused`,
    );
  }
}
