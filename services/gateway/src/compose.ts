import type { GatewayConfig } from '@mssgw/config';
import type { PractitionerDirectory } from '@mssgw/directory';
import { contentHashOf, parseResult, type Hl7Warning } from '@mssgw/hl7';
import { toleranceOf } from '@mssgw/intake';
import { buildEml, documentSettings, planResult, senderMailbox } from '@mssgw/mssante';
import type { QueuedResult } from '@mssgw/hl7';
import type { MailSpec } from '@mssgw/mssante';
import { resultIdOf } from '@mssgw/queue';
import { policyForSource, type Refusal } from '@mssgw/routing';

export interface ComposeOptions {
  config: GatewayConfig;
  /** The source the result would arrive from (its routing rules and sender mailbox). */
  source: string;
  allowsDomain(domain: string, forPatient: boolean): boolean;
  directory?: PractitionerDirectory;
  /** Fixed time for reproducible output (golden files); default now. */
  now?: number;
}

export interface ComposedMail {
  /** `<mail id>.eml` */
  file: string;
  spec: MailSpec;
  eml: Buffer;
}

export interface ComposedResult {
  resultId: string;
  result: QueuedResult;
  mails: ComposedMail[];
  refusals: Refusal[];
  /** What the listener would tolerate in this result (its ACK: AA with ERR segments of severity W). */
  warnings: Hl7Warning[];
}

/**
 * What the gateway would send for an HL7 result, without sending it: the same parsing, routing, content and MIME
 * code as the running services, offline. Throws Hl7Error for a message the listener would refuse.
 */
export async function composeResult(bytes: Buffer, o: ComposeOptions): Promise<ComposedResult> {
  // Read as the source's listener reads it (its intake.tolerance).
  const { warnings, ...parsed } = parseResult(bytes, toleranceOf(o.config, o.source));
  const result: QueuedResult = { ...parsed, documents: parsed.documents.map(({ content: _c, ...d }) => d) };
  const resultId = resultIdOf({ source: o.source, sendingFacility: result.sendingFacility, controlId: result.controlId, contentSha256: contentHashOf(bytes) });
  const now = o.now ?? Date.now();
  const { config } = o;
  const mailbox = config.mailboxes.find((m) => m.sources.includes(o.source)) ?? config.mailboxes[0]!;
  const plan = await planResult({
    resultId, result, receivedAt: now,
    documents: parsed.documents.map((d) => ({ ref: d, content: d.content })),
    policy: policyForSource(config, o.source, { allowsDomain: (d, p) => o.allowsDomain(d, p), ...(o.directory ? { directory: o.directory } : {}) }),
    mailbox: senderMailbox(mailbox),
    productReference: config.mssante.productReference,
    settings: documentSettings(config.mssante.documents),
    limits: config.routing,
    ...(config.mssante.bodies ? { bodies: config.mssante.bodies } : {}),
    // Offline there is no version counter: an initial send is version 1, a replacement version 2.
    versionOf: () => Promise.resolve(result.action === 'replace' ? 2 : 1),
  });
  const contents = plan.content?.contents ?? new Map<string, Buffer>();
  const specs = plan.mails;
  const mails = specs.map((spec) => ({ file: `${spec.mailId}.eml`, spec, eml: buildEml(spec, contents, new Date(now)) }));
  return { resultId, result, mails, refusals: plan.decision.refusals, warnings };
}
