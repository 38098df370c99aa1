import { Buffer } from "node:buffer";
import type { CreditLedger, CreditLedgerInfo, CreditLedgerListQuery } from "@latch/core/adapter";
import { beforeEach, describe, expect, it } from "vitest";
import { abortedSignal, expectInvalidInput } from "../../expect-errors.js";
import { uniqueId } from "../../fixtures.js";
import type { CreditLedgerParts } from "./context.js";

/** Listing ledgers by subject: filters, code-point order, keyset pages, bad cursors. */
export function listingCases(suite: CreditLedgerParts): void {
  describe("listing ledgers", () => {
    let credits: CreditLedger;
    beforeEach(() => {
      ({ credits } = suite.current());
    });

    /** Every page of a listing, with each page's size checked against `limit`. */
    const listAll = async (query: Omit<CreditLedgerListQuery, "cursor">) => {
      const seen: CreditLedgerInfo[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await credits.listLedgers({ ...query, ...(cursor === undefined ? {} : { cursor }) });
        expect(page.items.length).toBeLessThanOrEqual(query.limit);
        if (page.next !== undefined) expect(page.items).toHaveLength(query.limit);
        seen.push(...page.items);
        cursor = page.next;
        pages++;
      } while (cursor !== undefined);
      return { ids: seen.map((l) => l.ledgerId), items: seen, pages };
    };

    it("filters by every given subject field, exactly, in ledgerId order", async () => {
      const p = uniqueId("list");
      const [tenant, other, project, org] = [
        uniqueId("tenant"),
        uniqueId("tenant"),
        uniqueId("p"),
        uniqueId("o"),
      ];
      const one = {
        ledgerId: `${p}-1`,
        subject: { tenantId: tenant, projectId: project },
        timeZone: "Europe/Paris",
        metadata: { plan: "pro" },
      };
      // Created out of order: the listing sorts.
      await credits.createLedger({
        ledgerId: `${p}-4`,
        subject: { tenantId: tenant, projectId: project, orgId: org },
      });
      await credits.createLedger({
        ledgerId: `${p}-2`,
        subject: { tenantId: tenant, projectId: `${project}x` },
      });
      await credits.createLedger(one);
      await credits.createLedger({ ledgerId: `${p}-3`, subject: { tenantId: tenant } });
      await credits.createLedger({ ledgerId: `${p}-5`, subject: { tenantId: other, projectId: project } });

      const byTenant = await credits.listLedgers({ subject: { tenantId: tenant }, limit: 100 });
      expect(byTenant.next).toBeUndefined();
      expect(byTenant.items.map((l) => l.ledgerId)).toEqual([`${p}-1`, `${p}-2`, `${p}-3`, `${p}-4`]);
      expect(byTenant.items[0]).toEqual(one);
      expect(byTenant.items[2]).toEqual({
        ledgerId: `${p}-3`,
        subject: { tenantId: tenant },
        timeZone: "UTC",
      });

      const ids = async (subject: CreditLedgerListQuery["subject"]) =>
        (await credits.listLedgers({ subject, limit: 1000 })).items.map((l) => l.ledgerId);
      expect(await ids({ tenantId: tenant, projectId: project })).toEqual([`${p}-1`, `${p}-4`]);
      expect(await ids({ tenantId: tenant, orgId: org })).toEqual([`${p}-4`]);
      expect(await ids({ tenantId: other, projectId: project })).toEqual([`${p}-5`]);
      // Without a tenant: every tenant's ledgers with that project.
      expect(await ids({ projectId: project })).toEqual([`${p}-1`, `${p}-4`, `${p}-5`]);
      // Exact equality: no prefix match, no case folding.
      expect(await ids({ tenantId: tenant, projectId: project.slice(0, -1) })).toEqual([]);
      expect(await ids({ tenantId: tenant.toUpperCase() })).toEqual([]);
      expect(await credits.listLedgers({ subject: { tenantId: uniqueId("nobody") }, limit: 5 })).toEqual({
        items: [],
      });
    });

    it("pages across several pages, each ledger exactly once, in code-point order", async () => {
      const p = uniqueId("page");
      const tenantId = uniqueId("tenant");
      // Code-point (UTF-8 byte) order: B < a < a0 < b < z < U+FF5E < U+1F600 (plain JS `<`
      // would put the surrogate pair of U+1F600 before U+FF5E).
      const suffixes = ["z", "\u{1F600}", "a0", "B", "\uFF5E", "b", "a"];
      for (const s of suffixes) await credits.createLedger({ ledgerId: `${p}-${s}`, subject: { tenantId } });
      const expected = ["B", "a", "a0", "b", "z", "\uFF5E", "\u{1F600}"].map((s) => `${p}-${s}`);

      const whole = await listAll({ subject: { tenantId }, limit: 1000 });
      expect(whole).toMatchObject({ ids: expected, pages: 1 });
      for (const limit of [1, 2, 3, 7]) {
        const paged = await listAll({ subject: { tenantId }, limit });
        expect(paged.ids).toEqual(expected);
        expect(new Set(paged.ids).size).toBe(expected.length);
        expect(paged.items).toEqual(whole.items);
      }
      expect((await listAll({ subject: { tenantId }, limit: 2 })).pages).toBe(4);
      // A full last page ends with a cursor whose next page is empty.
      const full = await credits.listLedgers({ subject: { tenantId }, limit: 7 });
      expect(full.items).toHaveLength(7);
      expect(full.next).toBeUndefined();

      // Keyset pages: a ledger created after the cursor appears on a later page, one created
      // before it does not, and nothing is returned twice.
      const first = await credits.listLedgers({ subject: { tenantId }, limit: 3 });
      expect(first.items.map((l) => l.ledgerId)).toEqual(expected.slice(0, 3));
      await credits.createLedger({ ledgerId: `${p}-A`, subject: { tenantId } });
      await credits.createLedger({ ledgerId: `${p}-c`, subject: { tenantId } });
      const rest: string[] = [];
      let cursor = first.next;
      while (cursor !== undefined) {
        const page = await credits.listLedgers({ subject: { tenantId }, limit: 3, cursor });
        rest.push(...page.items.map((l) => l.ledgerId));
        cursor = page.next;
      }
      expect(rest).toEqual([`${p}-b`, `${p}-c`, `${p}-z`, `${p}-\uFF5E`, `${p}-\u{1F600}`]);
    });

    it("rejects a bad limit, cursor or subject naming the field", async () => {
      const subject = { tenantId: uniqueId("tenant") };
      for (const limit of [0, 1001, 1.5, -1, Number.NaN, "10" as unknown as number]) {
        await expectInvalidInput(credits.listLedgers({ subject, limit }), "limit");
      }
      await credits.createLedger({ ledgerId: uniqueId("l"), subject });
      await credits.createLedger({ ledgerId: uniqueId("l"), subject });
      const { next } = await credits.listLedgers({ subject, limit: 1 });
      expect(typeof next).toBe("string");
      const good = next as string;
      const forged = [
        "",
        "forged",
        "x y",
        `${good}=`,
        `${good}A`,
        good.slice(0, -1),
        Buffer.from(JSON.stringify("ledger-1"), "utf8").toString("base64url"),
        Buffer.from(JSON.stringify([""]), "utf8").toString("base64url"),
        Buffer.from(JSON.stringify(["x".repeat(257)]), "utf8").toString("base64url"),
        Buffer.from(JSON.stringify([1]), "utf8").toString("base64url"),
      ];
      for (const cursor of forged) {
        await expectInvalidInput(credits.listLedgers({ subject, limit: 10, cursor }), "cursor");
      }
      await expectInvalidInput(
        credits.listLedgers({ subject: { tenantId: "" }, limit: 10 }),
        "subject.tenantId",
      );
      await expectInvalidInput(
        credits.listLedgers({ subject: { tenantId: "t", projectId: 7 as unknown as string }, limit: 10 }),
        "subject.projectId",
      );
      await expectInvalidInput(
        credits.listLedgers({ subject: undefined as unknown as { tenantId: string }, limit: 10 }),
        "subject",
      );
      await expect(credits.listLedgers({ subject, limit: 1 }, abortedSignal())).rejects.toMatchObject({
        name: "AbortError",
      });
    });
  });
}
