import { z } from "zod";

/**
 * ISO 4217 active currencies and their minor-unit exponents (list one, funds and
 * precious metals without a minor unit left out). Shipped as data, not read from `Intl`,
 * whose digits differ from ISO 4217 for some codes (IQD, LBP, …) and vary by ICU build.
 */
const MINOR_UNITS: Readonly<Record<string, number>> = (() => {
  const table: Record<string, number> = {};
  const groups: Array<[number, string]> = [
    [0, "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"],
    [3, "BHD IQD JOD KWD LYD OMR TND"],
    [4, "CLF UYW"],
    [
      2,
      "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP BYN BZD " +
        "CAD CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS " +
        "GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL " +
        "MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK " +
        "PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS " +
        "TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED VES WST XCD XCG YER ZAR ZMW ZWG",
    ],
  ];
  for (const [digits, codes] of groups) for (const code of codes.split(" ")) table[code] = digits;
  return table;
})();

/** The ISO 4217 minor-unit exponent of `currency` (USD 2, JPY 0, KWD 3), or undefined if unknown. */
export function minorUnitDigits(currency: string): number | undefined {
  return Object.hasOwn(MINOR_UNITS, currency) ? MINOR_UNITS[currency] : undefined;
}

/** True for an active ISO 4217 code that has a minor unit. */
export function isCurrencyCode(value: string): boolean {
  return minorUnitDigits(value) !== undefined;
}

/** An ISO 4217 currency code (upper case, active, with a minor unit). */
export const CurrencyCodeSchema = z
  .string({ error: "expected an ISO 4217 currency code" })
  .refine(isCurrencyCode, { error: "unknown currency: expected an active ISO 4217 code such as USD" });

export type CurrencyCode = z.output<typeof CurrencyCodeSchema>;
