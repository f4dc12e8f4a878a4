export { route, policyForSource, resultTypeOf, applySizeLimits, estimatedMailBytes, domainOf, PATIENT_DOMAIN, type Recipient, type RecipientKind, type Refusal, type RefusalReason, type RoutingPolicy, type RoutingDecision, type ResultType } from './route.ts';
export { OppositionFile, parseOppositionFile, parseOppositionSubject, oppositionDirections, patientIdsOf, type ParsedOppositionFile, type RejectedLine } from './opposition.ts';
export { checkBeforeSending, whitelistReader, WhitelistReader, WHITELIST_READ_MS } from './dispatch.ts';
