export { type ApiKeyPage, type ApiKeyStore, ownerWithin, type StoredApiKey } from "./contract.js";
export { API_KEY_DIGEST, ApiKeyHasher } from "./digest.js";
export {
  API_KEY_MODES,
  type ApiKeyMode,
  crc32,
  generateApiKey,
  generateApiKeyId,
  type ParsedApiKey,
  parseApiKey,
} from "./format.js";
export {
  API_KEY_SCOPES,
  ApiKeyDigestSchema,
  ApiKeyIdSchema,
  ApiKeyInstantSchema,
  type ApiKeyListOptions,
  ApiKeyListOptionsSchema,
  type ApiKeyQuota,
  ApiKeyQuotaSchema,
  type ApiKeyRecord,
  type ApiKeyRecordInput,
  ApiKeyRecordSchema,
  ApiKeyScopeSchema,
  apiKeyQuotaAccount,
  apiKeyQuotaUnits,
  IntervalMsSchema,
  MONEY_QUOTA_SCALE,
  type NewApiKey,
  type NewApiKeyInput,
  NewApiKeySchema,
} from "./schemas.js";
export { type ApiKeyAuthResult, type ApiKeyRejection, ApiKeys, type ApiKeysOptions } from "./service.js";
export {
  isTestModeTenant,
  TEST_MODE_TENANT_MAX,
  TEST_MODE_TENANT_PREFIX,
  testModeSubject,
} from "./test-mode.js";
