import type { DirectoryMailbox, MailboxType } from './extraction.ts';
import { structureKeys } from './keys.ts';

const TYPE_ORDER: Record<MailboxType, number> = { PER: 0, CAB: 1, ORG: 2, APP: 3 };

/** The mailbox chosen for a practitioner, and why, in words an integration engineer can check. */
export interface MailboxChoice {
  mailbox: DirectoryMailbox;
  explanation: string;
}

/**
 * Chooses one mailbox among a practitioner's: the preferred one (FHIR rank 1) first, then one attached to the
 * sending site's structure, then a personal mailbox before a practice or organisational one; the address breaks
 * the remaining ties so that the same directory always gives the same answer.
 */
export function chooseMailbox(candidates: DirectoryMailbox[], site: { structureIds: string[] }): MailboxChoice | undefined {
  if (!candidates.length) return undefined;
  const siteKeys = new Set(site.structureIds.flatMap((id) => structureKeys(id)));
  const atSite = (m: DirectoryMailbox) =>
    Boolean(m.structureId && (siteKeys.has(`s:${m.structureId}`) || structureKeys(m.structureId).some((k) => siteKeys.has(k))));
  const ranked = [...candidates].sort(
    (a, b) =>
      (a.rank ?? 99) - (b.rank ?? 99) ||
      Number(atSite(b)) - Number(atSite(a)) ||
      TYPE_ORDER[a.type] - TYPE_ORDER[b.type] ||
      a.address.localeCompare(b.address),
  );
  const mailbox = ranked[0]!;
  if (ranked.length === 1) return { mailbox, explanation: `only ${mailbox.type} mailbox in the directory` };
  const second = ranked[1]!;
  const why =
    (mailbox.rank ?? 99) < (second.rank ?? 99)
      ? `preferred mailbox (rank ${mailbox.rank})`
      : atSite(mailbox) && !atSite(second)
        ? `attached to structure ${mailbox.structureId}, the sending site`
        : TYPE_ORDER[mailbox.type] < TYPE_ORDER[second.type]
          ? `${mailbox.type} before ${second.type}`
          : 'first in address order among equal candidates';
  return { mailbox, explanation: `${mailbox.type} mailbox chosen among ${ranked.length}: ${why}` };
}
