import { type BillingSubject, LatchError, type LatchValidationError } from "@latch/core";
import type {
  CreditBalance,
  CreditGrant,
  CreditHistoryEntry,
  CreditLedger,
  CreditLedgerInfo,
} from "@latch/core/adapter";
import type { Context, Hono } from "hono";
import type { z } from "zod";
import { type BillingEnv, callerKey, requireScope } from "./auth.js";
import {
  BalanceParams,
  type BalanceView,
  CREDIT_SCOPES,
  CreateGrantBody,
  CreateLedgerBody,
  GrantPathParams,
  type GrantView,
  type HistoryEntryView,
  HistoryParams,
  LedgerPathParams,
  type LedgerView,
  ListLedgersParams,
  ResetLedgerBody,
  VoidGrantBody,
} from "./credit-schemas.js";
import {
  type InvalidParam,
  invalidInput,
  notFound,
  ProblemError,
  parseInput as parse,
  readJson,
  snakePath,
  toProblem,
} from "./problem.js";

/** The subject fields of a ledger, as `@latch/core` names them. */
type SubjectKey = "tenantId" | "orgId" | "projectId" | "apiKeyId" | "endUserId" | "feature";
type CreditSubject = CreditLedgerInfo["subject"];

const SUBJECT_WIRE: Array<[SubjectKey, string]> = [
  ["tenantId", "tenant_id"],
  ["orgId", "org_id"],
  ["projectId", "project_id"],
  ["apiKeyId", "api_key_id"],
  ["endUserId", "end_user_id"],
  ["feature", "feature"],
];

/** What `createBillingApp({ credits })` takes: any `CreditLedger` (every route, listing included). */
export type BillingCredits = CreditLedger;

/** A ledger is the caller's when its subject has every field of the key's owner. */
function owns(owner: BillingSubject, subject: CreditSubject): boolean {
  for (const [key] of SUBJECT_WIRE) {
    const value = owner[key];
    if (value !== undefined && subject[key] !== value) return false;
  }
  return true;
}

function subjectView(subject: CreditSubject): z.output<typeof LedgerView>["subject"] {
  const view: Record<string, string> = {};
  for (const [key, wire] of SUBJECT_WIRE) {
    const value = subject[key];
    if (value !== undefined) view[wire] = value;
  }
  return view as z.output<typeof LedgerView>["subject"];
}

function ledgerView(ledger: CreditLedgerInfo): z.output<typeof LedgerView> {
  return {
    ledger_id: ledger.ledgerId,
    subject: subjectView(ledger.subject),
    time_zone: ledger.timeZone,
    ...(ledger.metadata === undefined ? {} : { metadata: ledger.metadata }),
  };
}

function grantView(grant: CreditGrant): z.output<typeof GrantView> {
  return {
    grant_id: grant.grantId,
    ledger_id: grant.ledgerId,
    feature_id: grant.featureId,
    amount: grant.amount,
    priority: grant.priority,
    effective_at: grant.effectiveAt,
    ...(grant.expiration === undefined ? {} : { expiration: grant.expiration }),
    ...(grant.rollover === undefined
      ? {}
      : {
          rollover: {
            type: grant.rollover.type,
            ...(grant.rollover.maxAmount === undefined ? {} : { max_amount: grant.rollover.maxAmount }),
          },
        }),
    ...(grant.metadata === undefined ? {} : { metadata: grant.metadata }),
    ...(grant.expiresAt === undefined ? {} : { expires_at: grant.expiresAt }),
    sequence: grant.sequence,
    ...(grant.voidedAt === undefined ? {} : { voided_at: grant.voidedAt }),
  };
}

function balanceView(balance: CreditBalance): z.output<typeof BalanceView> {
  return {
    ledger_id: balance.ledgerId,
    at: balance.at,
    features: balance.features.map((f) => ({
      feature_id: f.featureId,
      balance: f.balance,
      granted: f.granted,
      burned: f.burned,
      expired: f.expired,
      voided: f.voided,
      usage: f.usage,
      overage: f.overage,
    })),
    grants: balance.grants.map((g) => ({
      grant_id: g.grantId,
      feature_id: g.featureId,
      priority: g.priority,
      effective_at: g.effectiveAt,
      ...(g.expiresAt === undefined ? {} : { expires_at: g.expiresAt }),
      ...(g.voidedAt === undefined ? {} : { voided_at: g.voidedAt }),
      active: g.active,
      granted: g.granted,
      balance: g.balance,
      burned: g.burned,
      expired: g.expired,
      voided: g.voided,
    })),
  };
}

function entryView(entry: CreditHistoryEntry): z.output<typeof HistoryEntryView> {
  switch (entry.type) {
    case "RESET":
      return {
        type: "RESET",
        at: entry.at,
        grants: entry.grants.map((g) => ({
          grant_id: g.grantId,
          feature_id: g.featureId,
          before: g.before,
          after: g.after,
        })),
      };
    case "GRANT_USAGE":
      return {
        type: "GRANT_USAGE",
        at: entry.at,
        grant_id: entry.grantId,
        feature_id: entry.featureId,
        amount: entry.amount,
        period: entry.period,
      };
    default:
      return {
        type: entry.type,
        at: entry.at,
        grant_id: entry.grantId,
        feature_id: entry.featureId,
        amount: entry.amount,
      };
  }
}

/**
 * Calls the ledger; its errors become problems. `invalid_input` names the wire field
 * (`featureId` → `feature_id`, `limit` → `page_size`) where the request had it (`where`);
 * `high_watermark` and `idempotency_conflict` are 409s (see `toProblem`).
 */
async function ledgerCall<T>(call: Promise<T>, where: InvalidParam["in"]): Promise<T> {
  try {
    return await call;
  } catch (error) {
    if (LatchError.isInstance(error) && error.code === "invalid_input") {
      const issues = (error as LatchValidationError).issues ?? [];
      throw invalidInput(
        issues.map((issue) => ({
          name: issue.path === "limit" ? "page_size" : snakePath(issue.path) || "(body)",
          in: where,
          reason: issue.message,
        })),
      );
    }
    throw toProblem(error);
  }
}

/** The caller's subject, narrowed by a request's optional subject fields; a contradiction is a 404. */
function subjectFor(owner: BillingSubject, wire: Partial<Record<string, string>> | undefined): CreditSubject {
  const subject: Partial<CreditSubject> = {};
  for (const [key, name] of SUBJECT_WIRE) {
    const asked = wire?.[name];
    const own = owner[key];
    if (own !== undefined && asked !== undefined && asked !== own) throw notFound();
    const value = own ?? asked;
    if (value !== undefined) subject[key] = value;
  }
  return subject as CreditSubject;
}

/**
 * Mounts the credit routes on `app` (already behind `apiKeyAuth`). Every route under
 * `/api/billing/credits/ledgers/{ledgerId}` first reads the ledger and answers 404 unless its
 * subject is the caller's (has every field of the key's owner), so another tenant's ledger,
 * grants, balance and history are indistinguishable from none.
 */
export function mountCreditRoutes(app: Hono<BillingEnv>, credits: BillingCredits, clock: () => number): void {
  const read = requireScope(CREDIT_SCOPES.creditsRead);
  const write = requireScope(CREDIT_SCOPES.creditsWrite);

  /** The caller's ledger named by the path, or a 404. */
  const ownLedger = async (c: Context<BillingEnv>): Promise<CreditLedgerInfo> => {
    const { ledgerId } = parse(LedgerPathParams, { ledgerId: c.req.param("ledgerId") }, "path");
    const ledger = await ledgerCall(credits.getLedger(ledgerId, c.req.raw.signal), "path");
    if (ledger === undefined || !owns(callerKey(c).owner, ledger.subject)) throw notFound();
    return ledger;
  };

  app.get("/api/billing/credits/ledgers", read, async (c) => {
    const q = parse(ListLedgersParams, c.req.query(), "query");
    const owner = callerKey(c).owner;
    if (q.tenant_id !== undefined && q.tenant_id !== owner.tenantId) throw notFound();
    const subject: Partial<CreditSubject> = {};
    for (const [key] of SUBJECT_WIRE) {
      const value = owner[key];
      if (value !== undefined) subject[key] = value;
    }
    const page = await ledgerCall(
      credits.listLedgers(
        { subject, limit: q.page_size ?? 100, ...(q.cursor === undefined ? {} : { cursor: q.cursor }) },
        c.req.raw.signal,
      ),
      "query",
    );
    return c.json({
      // Defence in depth: a listing never shows a ledger that is not the caller's.
      items: page.items.filter((ledger) => owns(owner, ledger.subject)).map(ledgerView),
      ...(page.next === undefined ? {} : { next_cursor: page.next }),
    });
  });

  app.post("/api/billing/credits/ledgers", write, async (c) => {
    const body = parse(CreateLedgerBody, await readJson(c.req.raw), "body");
    const subject = subjectFor(callerKey(c).owner, body.subject);
    // A ledger id taken by another subject is a conflict that says nothing about its owner.
    const { status, ledger } = await ledgerCall(
      credits.createLedger(
        {
          ledgerId: body.ledger_id,
          subject,
          ...(body.time_zone === undefined ? {} : { timeZone: body.time_zone }),
          ...(body.metadata === undefined ? {} : { metadata: body.metadata }),
        },
        c.req.raw.signal,
      ),
      "body",
    );
    return c.json({ status, ledger: ledgerView(ledger) }, status === "created" ? 201 : 200);
  });

  app.get("/api/billing/credits/ledgers/:ledgerId", read, async (c) => {
    return c.json(ledgerView(await ownLedger(c)));
  });

  app.post("/api/billing/credits/ledgers/:ledgerId/grants", write, async (c) => {
    const ledger = await ownLedger(c);
    const body = parse(CreateGrantBody, await readJson(c.req.raw), "body");
    const { status, grant } = await ledgerCall(
      credits.grant(
        {
          grantId: body.grant_id,
          ledgerId: ledger.ledgerId,
          featureId: body.feature_id,
          amount: body.amount,
          ...(body.priority === undefined ? {} : { priority: body.priority }),
          effectiveAt: body.effective_at,
          ...(body.expiration === undefined ? {} : { expiration: body.expiration }),
          ...(body.rollover === undefined
            ? {}
            : {
                rollover: {
                  type: body.rollover.type,
                  ...(body.rollover.max_amount === undefined ? {} : { maxAmount: body.rollover.max_amount }),
                },
              }),
          ...(body.metadata === undefined ? {} : { metadata: body.metadata }),
        },
        c.req.raw.signal,
      ),
      "body",
    );
    return c.json({ status, grant: grantView(grant) }, status === "granted" ? 201 : 200);
  });

  app.get("/api/billing/credits/ledgers/:ledgerId/grants", read, async (c) => {
    const ledger = await ownLedger(c);
    const grants = await ledgerCall(credits.listGrants(ledger.ledgerId, c.req.raw.signal), "path");
    return c.json({ items: grants.map(grantView) });
  });

  app.post("/api/billing/credits/ledgers/:ledgerId/grants/:grantId/void", write, async (c) => {
    const ledger = await ownLedger(c);
    const { grantId } = parse(GrantPathParams, c.req.param(), "path");
    const body = parse(VoidGrantBody, await readJson(c.req.raw), "body");
    try {
      const { status, grant } = await ledgerCall(
        credits.voidGrant({ ledgerId: ledger.ledgerId, grantId, at: body.at }, c.req.raw.signal),
        "body",
      );
      return c.json({ status, grant: grantView(grant) });
    } catch (error) {
      // A grant that is not in this ledger (another tenant's included) is a 404, like a ledger.
      const params = error instanceof ProblemError ? error.problem["invalid-params"] : undefined;
      if (params?.some((p) => p.name === "grant_id")) throw notFound();
      throw error;
    }
  });

  app.post("/api/billing/credits/ledgers/:ledgerId/reset", write, async (c) => {
    const ledger = await ownLedger(c);
    const body = parse(ResetLedgerBody, await readJson(c.req.raw), "body");
    const { status, at } = await ledgerCall(
      credits.reset({ ledgerId: ledger.ledgerId, at: body.at }, c.req.raw.signal),
      "body",
    );
    return c.json({ status, ledger_id: ledger.ledgerId, at });
  });

  app.get("/api/billing/credits/ledgers/:ledgerId/balance", read, async (c) => {
    const ledger = await ownLedger(c);
    const q = parse(BalanceParams, c.req.query(), "query");
    const at = q.at ?? new Date(clock()).toISOString();
    const balance = await ledgerCall(credits.balance(ledger.ledgerId, at, c.req.raw.signal), "query");
    return c.json(balanceView(balance));
  });

  app.get("/api/billing/credits/ledgers/:ledgerId/history", read, async (c) => {
    const ledger = await ownLedger(c);
    const q = parse(HistoryParams, c.req.query(), "query");
    const pageSize = q.page_size ?? 100;
    const page = await ledgerCall(
      credits.history(
        {
          ledgerId: ledger.ledgerId,
          from: q.from,
          to: q.to,
          limit: pageSize,
          ...(q.cursor === undefined ? {} : { cursor: q.cursor }),
        },
        c.req.raw.signal,
      ),
      "query",
    );
    return c.json({
      ledger_id: ledger.ledgerId,
      from: q.from,
      to: q.to,
      page_size: pageSize,
      items: page.items.map(entryView),
      ...(page.next === undefined ? {} : { next_cursor: page.next }),
    });
  });
}
