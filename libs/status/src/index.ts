export {
  StatusStore,
  type Delivery, type DeliveryEvent, type ResultRecord, type RecipientKind, type RoutingRecord, type StatusEvent,
} from './store.ts';
export {
  ReplyStore, REPLY_MATCHES,
  type Reply, type ReplyFilter, type ReplyMatch, type IncomingReply, type RecordedReply,
} from './replies.ts';
// The lifecycle's own names, for the callers that already took them from here.
export { isFinal, type DeliveryState } from '@mssgw/lifecycle';
