export { parseReceipt, parseDisposition, type Receipt, type DsnRecipient, type Disposition, type ReplyFields } from './receipt.ts';
export { mailOrigin, mailAddress, type MailOrigin } from './origin.ts';
export { parseFieldBlocks, addressOf, typedValue, type FieldBlock } from './fields.ts';
export { DEFAULT_RECEIPT_LIMITS, QUARANTINE_REASONS, UnreadableMail, messageIdHash, type QuarantineReason, type ReceiptLimits } from './limits.ts';
