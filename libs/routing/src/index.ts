export { route, policyForSource, resultTypeOf, applySizeLimits, estimatedMailBytes, domainOf, PATIENT_DOMAIN, type Recipient, type RecipientKind, type Refusal, type RefusalReason, type RoutingPolicy, type RoutingDecision, type ResultType } from './route.ts';
export { OppositionList } from './opposition.ts';
