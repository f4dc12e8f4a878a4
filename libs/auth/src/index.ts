export { ROLES, isRole, roleAllows, claimAt, roleFromClaims, type Role } from './roles.ts';
export { maskIns, maskName, maskAddress, maskText, maskDelivery, maskResult, maskSummary, maskResultsPage } from './mask.ts';
export { createApiKey, listApiKeys, revokeApiKey, verifyApiKey, looksLikeApiKey, type ApiKey, type KeyRefusal } from './keys.ts';
export {
  recordAudit, queryAudit, pruneAudit, encodeAuditCursor, decodeAuditCursor, type AuditEvent, type NewAuditEvent, type AuditQuery, type AuditPage,
} from './audit.ts';
export { OidcVerifier, describeTokenError, type OidcOptions, type TokenCheck } from './oidc.ts';
