export {
  StatusStore,
  type Delivery, type DeliveryEvent, type ResultRecord, type RecipientKind, type StatusEvent,
} from './store.ts';
// The lifecycle's own names, for the callers that already took them from here.
export { isFinal, type DeliveryState } from '@mssgw/lifecycle';
