import type { BillingSubject } from "../schemas/identity.js";

/**
 * The tenant-id prefix of test-mode data. A test-mode key's data (usage, reports, credits)
 * lives under the tenant `latch-test:<its owner's tenant>` ({@link testModeSubject}), so it
 * never reads or writes its live tenant's data and no live key sees it. No key may be issued
 * for a tenant with this prefix (`ApiKeys.create` refuses it), so the two never meet.
 */
export const TEST_MODE_TENANT_PREFIX = "latch-test:";

/** The longest tenant id a test-mode key may have: its test tenant must fit in 256 characters. */
export const TEST_MODE_TENANT_MAX = 256 - TEST_MODE_TENANT_PREFIX.length;

/** Whether `tenantId` is in the reserved test-mode namespace. */
export function isTestModeTenant(tenantId: string): boolean {
  return tenantId.startsWith(TEST_MODE_TENANT_PREFIX);
}

/**
 * The subject a test-mode key's data lives under: its owner with the tenant moved into the
 * test-mode namespace (`acme` → `latch-test:acme`); every other field unchanged.
 *
 * @example
 * testModeSubject({ tenantId: "acme", projectId: "p1" }); // { tenantId: "latch-test:acme", projectId: "p1" }
 */
export function testModeSubject(owner: BillingSubject): BillingSubject {
  return { ...owner, tenantId: `${TEST_MODE_TENANT_PREFIX}${owner.tenantId}` };
}
