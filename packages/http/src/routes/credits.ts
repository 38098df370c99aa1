import { type BillingSubject, LatchError, type LatchValidationError } from "@latch/core";
import type { CreditLedger, CreditLedgerInfo } from "@latch/core/adapter";
import { type Context, Hono } from "hono";
import { type BillingEnv, callerSubject } from "../auth.js";
import {
  BalanceParams,
  BalanceView,
  CREDIT_SCOPES,
  CreatedLedgerView,
  CreateGrantBody,
  CreateLedgerBody,
  GrantedView,
  GrantListView,
  GrantPathParams,
  HistoryParams,
  HistoryView,
  LedgerListView,
  LedgerPathParams,
  LedgerView,
  ListLedgersParams,
  ResetLedgerBody,
  ResetView,
  VoidedView,
  VoidGrantBody,
} from "../credit-schemas.js";
import { balanceView, entryView, grantView, ledgerView } from "../credit-views.js";
import {
  type InvalidParam,
  invalidInput,
  notFound,
  ProblemError,
  parseInput as parse,
  readJson,
  snakePath,
  toProblem,
} from "../problem.js";
import { DEFAULT_PAGE_SIZE, handle, type RouteGroup, type RouteSpec } from "../route.js";
import { ownerOf, ownTenant, SUBJECT_WIRE } from "../subject.js";

type CreditSubject = CreditLedgerInfo["subject"];

const HIGH_WATERMARK = "Dated before the ledger's high watermark (its latest reset): `high_watermark`";
const CONFLICT = "The id already exists with a different body: `idempotency_conflict`";

const listLedgers = {
  method: "get",
  path: "/",
  summary: "List the caller's credit ledgers (its own subject only), in ledger_id order",
  scope: CREDIT_SCOPES.creditsRead,
  query: ListLedgersParams,
  status: 200,
  response: LedgerListView,
} as const satisfies RouteSpec;

const createLedger = {
  method: "post",
  path: "/",
  summary: "Create a credit ledger for the caller's subject (idempotent by ledger_id)",
  scope: CREDIT_SCOPES.creditsWrite,
  body: CreateLedgerBody,
  status: 201,
  response: CreatedLedgerView,
  idempotent: true,
  problems: { "409": CONFLICT },
} as const satisfies RouteSpec;

const getLedger = {
  method: "get",
  path: "/{ledgerId}",
  summary: "One of the caller's credit ledgers",
  scope: CREDIT_SCOPES.creditsRead,
  params: LedgerPathParams,
  status: 200,
  response: LedgerView,
} as const satisfies RouteSpec;

const createGrant = {
  method: "post",
  path: "/{ledgerId}/grants",
  summary: "Grant credits (idempotent by grant_id)",
  scope: CREDIT_SCOPES.creditsWrite,
  params: LedgerPathParams,
  body: CreateGrantBody,
  status: 201,
  response: GrantedView,
  idempotent: true,
  problems: { "409": `${HIGH_WATERMARK}, or ${CONFLICT}` },
} as const satisfies RouteSpec;

const listGrants = {
  method: "get",
  path: "/{ledgerId}/grants",
  summary: "The ledger's grants, in creation order",
  scope: CREDIT_SCOPES.creditsRead,
  params: LedgerPathParams,
  status: 200,
  response: GrantListView,
} as const satisfies RouteSpec;

const voidGrant = {
  method: "post",
  path: "/{ledgerId}/grants/{grantId}/void",
  summary: "Void a grant from `at` on (the same `at` again is a no-op)",
  scope: CREDIT_SCOPES.creditsWrite,
  params: GrantPathParams,
  body: VoidGrantBody,
  status: 200,
  response: VoidedView,
  problems: {
    "409": `${HIGH_WATERMARK}, or the grant was voided at another time: \`idempotency_conflict\``,
  },
} as const satisfies RouteSpec;

const resetLedger = {
  method: "post",
  path: "/{ledgerId}/reset",
  summary:
    "Start a new period at `at`: grants roll over or expire (the latest reset's `at` again is a no-op)",
  scope: CREDIT_SCOPES.creditsWrite,
  params: LedgerPathParams,
  body: ResetLedgerBody,
  status: 200,
  response: ResetView,
  problems: { "409": HIGH_WATERMARK },
} as const satisfies RouteSpec;

const getBalance = {
  method: "get",
  path: "/{ledgerId}/balance",
  summary: "Balances per feature and per grant at a time (exact decimal strings)",
  scope: CREDIT_SCOPES.creditsRead,
  params: LedgerPathParams,
  query: BalanceParams,
  status: 200,
  response: BalanceView,
} as const satisfies RouteSpec;

const getHistory = {
  method: "get",
  path: "/{ledgerId}/history",
  summary: "Grants, voids, resets and usage per grant in a window, a page at a time (cursor pagination)",
  scope: CREDIT_SCOPES.creditsRead,
  params: LedgerPathParams,
  query: HistoryParams,
  status: 200,
  response: HistoryView,
} as const satisfies RouteSpec;

/** The credit routes, mounted at `/api/billing/credits/ledgers` when the app has a credit ledger. */
export const CREDIT_ROUTES: RouteGroup = {
  base: "/api/billing/credits/ledgers",
  routes: [
    listLedgers,
    createLedger,
    getLedger,
    createGrant,
    listGrants,
    voidGrant,
    resetLedger,
    getBalance,
    getHistory,
  ],
};

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
 * The credit routes as a sub-app (mounted behind `apiKeyAuth`). Every route under
 * `/api/billing/credits/ledgers/{ledgerId}` first reads the ledger and answers 404 unless its
 * subject is the caller's (has every field of the key's owner), so another tenant's ledger,
 * grants, balance and history are indistinguishable from none.
 */
export function creditsApp(credits: BillingCredits, clock: () => number): Hono<BillingEnv> {
  const app = new Hono<BillingEnv>();

  /** The caller's ledger named by the path, or a 404. */
  const ownLedger = async (c: Context<BillingEnv>): Promise<CreditLedgerInfo> => {
    const { ledgerId } = parse(LedgerPathParams, { ledgerId: c.req.param("ledgerId") }, "path");
    const ledger = await ledgerCall(credits.getLedger(ledgerId, c.req.raw.signal), "path");
    if (ledger === undefined || !owns(callerSubject(c), ledger.subject)) throw notFound();
    return ledger;
  };

  handle(app, listLedgers, async (c) => {
    const q = parse(ListLedgersParams, c.req.query(), "query");
    const owner = ownerOf(c, q.tenant_id);
    const subject: Partial<CreditSubject> = {};
    for (const [key] of SUBJECT_WIRE) {
      const value = owner[key];
      if (value !== undefined) subject[key] = value;
    }
    const page = await ledgerCall(
      credits.listLedgers(
        {
          subject,
          limit: q.page_size ?? DEFAULT_PAGE_SIZE,
          ...(q.cursor === undefined ? {} : { cursor: q.cursor }),
        },
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

  handle(app, createLedger, async (c) => {
    const body = parse(CreateLedgerBody, await readJson(c.req.raw), "body");
    // A `subject.tenant_id` naming the caller's own tenant means the tenant its data lives under.
    const wire =
      body.subject?.tenant_id !== undefined && ownTenant(c, body.subject.tenant_id)
        ? { ...body.subject, tenant_id: callerSubject(c).tenantId }
        : body.subject;
    const subject = subjectFor(callerSubject(c), wire);
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

  handle(app, getLedger, async (c) => {
    return c.json(ledgerView(await ownLedger(c)));
  });

  handle(app, createGrant, async (c) => {
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

  handle(app, listGrants, async (c) => {
    const ledger = await ownLedger(c);
    const grants = await ledgerCall(credits.listGrants(ledger.ledgerId, c.req.raw.signal), "path");
    return c.json({ items: grants.map(grantView) });
  });

  handle(app, voidGrant, async (c) => {
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

  handle(app, resetLedger, async (c) => {
    const ledger = await ownLedger(c);
    const body = parse(ResetLedgerBody, await readJson(c.req.raw), "body");
    const { status, at } = await ledgerCall(
      credits.reset({ ledgerId: ledger.ledgerId, at: body.at }, c.req.raw.signal),
      "body",
    );
    return c.json({ status, ledger_id: ledger.ledgerId, at });
  });

  handle(app, getBalance, async (c) => {
    const ledger = await ownLedger(c);
    const q = parse(BalanceParams, c.req.query(), "query");
    const at = q.at ?? new Date(clock()).toISOString();
    const balance = await ledgerCall(credits.balance(ledger.ledgerId, at, c.req.raw.signal), "query");
    return c.json(balanceView(balance));
  });

  handle(app, getHistory, async (c) => {
    const ledger = await ownLedger(c);
    const q = parse(HistoryParams, c.req.query(), "query");
    const pageSize = q.page_size ?? DEFAULT_PAGE_SIZE;
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

  return app;
}
