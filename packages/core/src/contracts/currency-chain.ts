import { CurrencyMismatchError } from "../errors/index.js";

/**
 * One currency per event: a rated-record version must be in the currency of the version it
 * supersedes. A correction in another currency would bill one event in two currencies; every
 * `RatedRecordStore` refuses it with this error (nothing written), rather than storing a version
 * that no billing export could ever turn into a cost delta.
 *
 * `prefix` is the record's position in a batch (`"2"`), or `""` for a single put: the error's
 * `path` is then `2.currency` or `currency`.
 *
 * @example
 * const previous = await store.get(record.supersedes);
 * if (previous && previous.currency !== record.currency)
 *   throw supersededCurrencyMismatch(record, previous.currency, "");
 */
export function supersededCurrencyMismatch(
  record: { readonly eventId: string; readonly currency: string },
  supersededCurrency: string,
  prefix: string,
): CurrencyMismatchError {
  return new CurrencyMismatchError({
    expected: supersededCurrency,
    actual: record.currency,
    eventId: record.eventId,
    path: prefix === "" ? "currency" : `${prefix}.currency`,
    reason: "the currency of the version it supersedes; an event is billed in one currency",
  });
}
