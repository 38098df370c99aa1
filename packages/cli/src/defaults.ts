/** Backends `--store` / `LATCH_STORE` name. */
export const STORE_KINDS = ["memory", "postgres", "redis"] as const;
export type StoreKind = (typeof STORE_KINDS)[number];

/** Default price file when neither `--prices-file` nor `LATCH_PRICES_FILE` is given. */
export const DEFAULT_PRICE_FILE = "latch-prices.json";
