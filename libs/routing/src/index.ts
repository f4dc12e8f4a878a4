export { route, isWhitelisted, PATIENT_DOMAIN, type Recipient, type RecipientKind, type Refusal, type RefusalReason, type RoutingPolicy, type RoutingDecision } from './route.ts';
