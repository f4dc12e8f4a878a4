export {
  StatusStore, isFinal,
  type Delivery, type DeliveryState, type DeliveryEvent, type ResultRecord, type RecipientKind, type StatusEvent,
} from './store.ts';
