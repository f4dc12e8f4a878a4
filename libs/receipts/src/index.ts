export { parseReceipt, parseDisposition, type Receipt, type DsnRecipient, type Disposition } from './receipt.ts';
export { parseFieldBlocks, addressOf, typedValue, type FieldBlock } from './fields.ts';
