export { route, isWhitelisted, domainOf, PATIENT_DOMAIN, type Recipient, type RecipientKind, type Refusal, type RefusalReason, type RoutingPolicy, type RoutingDecision } from './route.ts';
