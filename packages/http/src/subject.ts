import type { BillingSubject } from "@latch/core";
import type { FilterKey } from "@latch/core/adapter";
import type { Context } from "hono";
import { type BillingEnv, callerKey, callerSubject } from "./auth.js";
import { notFound } from "./problem.js";

/** The subject fields, as `@latch/core` names them. */
export type SubjectKey = "tenantId" | "orgId" | "projectId" | "apiKeyId" | "endUserId" | "feature";

/** Every subject field → its snake_case name on the wire, in the order views list them. */
export const SUBJECT_WIRE: ReadonlyArray<readonly [SubjectKey, string]> = [
  ["tenantId", "tenant_id"],
  ["orgId", "org_id"],
  ["projectId", "project_id"],
  ["apiKeyId", "api_key_id"],
  ["endUserId", "end_user_id"],
  ["feature", "feature"],
];

/** A subject's fields that are set, snake_case (`{ tenant_id, org_id? … }`). */
export function subjectWire(subject: Partial<Record<SubjectKey, string>>): Record<string, string> {
  const view: Record<string, string> = {};
  for (const [key, wire] of SUBJECT_WIRE) {
    const value = subject[key];
    if (value !== undefined) view[wire] = value;
  }
  return view;
}

/**
 * Whether a request's `tenant_id` names the caller's own tenant: its key's, or the tenant its
 * data lives under (a test-mode key's `latch-test:<tenant>`).
 */
export function ownTenant(c: Context<BillingEnv>, tenantId: string): boolean {
  return tenantId === callerKey(c).owner.tenantId || tenantId === callerSubject(c).tenantId;
}

/**
 * The subject the caller's data lives under (its key's owner; a test-mode key's test-mode
 * twin); a `tenant_id` naming another tenant is a 404 (nothing is said about it).
 */
export function ownerOf(c: Context<BillingEnv>, tenantId: string | undefined): BillingSubject {
  if (tenantId !== undefined && !ownTenant(c, tenantId)) throw notFound();
  return callerSubject(c);
}

/** Report filters on the wire → their store names: the subject's (but the tenant) and the model's. */
const FILTER_WIRE: ReadonlyArray<readonly [string, FilterKey]> = [
  ["provider", "provider"],
  ["model", "model"],
  ...SUBJECT_WIRE.filter(([key]) => key !== "tenantId").map(([key, wire]) => [wire, key] as const),
];

/** Report filters: the query's, with the caller's subject on top; a contradiction is a 404. */
export function filtersFor(owner: BillingSubject, query: object): Partial<Record<FilterKey, string>> {
  const q = query as Partial<Record<string, unknown>>;
  const filters: Partial<Record<FilterKey, string>> = {};
  for (const [name, key] of FILTER_WIRE) {
    const value = q[name];
    if (typeof value === "string") filters[key] = value;
  }
  for (const [key, value] of Object.entries(owner) as Array<[FilterKey, string | undefined]>) {
    if (value === undefined) continue;
    if (filters[key] !== undefined && filters[key] !== value) throw notFound();
    filters[key] = value;
  }
  return filters;
}
