export { parseReceipt, parseDisposition, type Receipt, type DsnRecipient, type Disposition } from './receipt.ts';
export { parseFieldBlocks, addressOf, typedValue, type FieldBlock } from './fields.ts';
export { DEFAULT_RECEIPT_LIMITS, QUARANTINE_REASONS, UnreadableMail, messageIdHash, type QuarantineReason, type ReceiptLimits } from './limits.ts';
