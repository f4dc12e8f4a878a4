import { Backoffs } from 'bullmq';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DELIVERY_STATES, ENTER_FROM, EVENT_SOURCES, FINAL_STATES, INITIAL_STATES, REASONS, REOPENINGS,
  afterFailedAttempt, canEnter, confirmationClock, confirmationTimeout, dsnTransition, failureText, isDeliveryState, isFinal, isResendable, isSendable,
  mdnTransition, nextRetry, operatorReplay, pauseDelay, retriesExhausted, retryDelayRange, routingRefusal, sendingJobOptions, smtpAccepted, smtpFailure,
  statusEventV1, zamFor, type DeliveryState, type Transition,
} from '@mssgw/lifecycle';
import { deliverySchema, historyEventSchema } from '../../services/api/src/schemas.ts';

// The lifecycle drawn the other way round from ENTER_FROM: where each state may go. Written out by hand, so that a
// change of the table shows here as a change of behaviour.
const RECEIPT_READ: DeliveryState[] = ['displayed', 'processed', 'deleted', 'processing-error'];
const DSN_ANY: DeliveryState[] = ['delayed', 'delivered', 'relayed', 'expanded', 'failed'];
const EXITS: Record<DeliveryState, DeliveryState[]> = {
  refused: [],
  // refused: checked again at dispatch (a domain that left the liste blanche, an opposition recorded since routing).
  queued: ['submitted', ...DSN_ANY, 'dead-lettered', 'refused'],
  submitted: [...DSN_ANY, 'unconfirmed', ...RECEIPT_READ],
  delayed: [...DSN_ANY, 'unconfirmed', ...RECEIPT_READ],
  delivered: RECEIPT_READ,
  relayed: RECEIPT_READ,
  expanded: RECEIPT_READ,
  failed: [],
  // queued: an operator's replay; refused: a replay to a domain that left the liste blanche.
  'dead-lettered': ['queued', 'refused'],
  unconfirmed: [...DSN_ANY, ...RECEIPT_READ],
  displayed: ['processed', 'deleted', 'processing-error'],
  processed: [],
  deleted: [],
  'processing-error': [],
};

describe('delivery lifecycle: states and transitions', () => {
  it('has fourteen states, each with its entry rule, naming only states', () => {
    expect(new Set(DELIVERY_STATES).size).toBe(14);
    expect(Object.keys(ENTER_FROM).sort()).toEqual([...DELIVERY_STATES].sort());
    for (const from of Object.values(ENTER_FROM).flat()) expect(isDeliveryState(from)).toBe(true);
    expect(isDeliveryState('sent')).toBe(false);
    expect(INITIAL_STATES).toEqual(['queued', 'refused']);
  });

  const pairs = DELIVERY_STATES.flatMap((from) => DELIVERY_STATES.map((to) => [from, to] as const));
  it.each(pairs)('%s → %s is allowed only where the lifecycle says', (from, to) => {
    expect(canEnter(from, to)).toBe(EXITS[from].includes(to));
  });

  it('knows which states are final', () => {
    expect([...FINAL_STATES].sort()).toEqual(
      ['refused', 'dead-lettered', 'unconfirmed', 'delivered', 'relayed', 'expanded', 'failed', 'displayed', 'processed', 'deleted', 'processing-error'].sort(),
    );
    expect(DELIVERY_STATES.filter((s) => !isFinal(s))).toEqual(['queued', 'submitted', 'delayed']);
  });

  it('sends only a queued recipient, and resends only one whose delivery is over', () => {
    expect(DELIVERY_STATES.filter(isSendable)).toEqual(['queued']);
    expect([...DELIVERY_STATES.filter(isResendable)].sort()).toEqual(
      ['delivered', 'relayed', 'expanded', 'failed', 'unconfirmed', 'displayed', 'processed', 'deleted', 'processing-error'].sort(),
    );
  });

  it('starts the confirmation clock on submission and stops it on any final outcome, not on a delay', () => {
    expect(confirmationClock('submitted')).toBe('start');
    expect(confirmationClock('delayed')).toBe('keep');
    expect(confirmationClock('queued')).toBe('keep');
    for (const s of FINAL_STATES) expect(confirmationClock(s)).toBe('stop');
  });

  it('leaves a final state for a pending one only by the listed reopenings, today the replay and a late "delayed" DSN', () => {
    const reopenings = pairs.filter(([from, to]) => isFinal(from) && !isFinal(to) && canEnter(from, to));
    expect(reopenings).toEqual(REOPENINGS);
    expect(REOPENINGS).toEqual([['dead-lettered', 'queued'], ['unconfirmed', 'delayed']]);
  });
});

describe('delivery lifecycle: triggers', () => {
  it('records the operator\'s 250 as submitted, with its queue id and the time the clock starts', () => {
    const t = smtpAccepted('250 2.0.0 Ok: queued as 4Xb2kQ1z9fz', 1_700_000_000_000);
    expect(t).toEqual({
      state: 'submitted', source: 'dispatcher',
      fields: { smtpResponse: '250 2.0.0 Ok: queued as 4Xb2kQ1z9fz', queueId: '4Xb2kQ1z9fz', submittedAt: 1_700_000_000_000, detail: '250 2.0.0 Ok: queued as 4Xb2kQ1z9fz' },
    });
    expect(smtpAccepted('250 OK', 1).fields).not.toHaveProperty('queueId');
    expect(canEnter('queued', t.state)).toBe(true);
  });

  it('fails a recipient the operator refuses with 5xx, reason its enhanced status code or else its reply code', () => {
    const refused = smtpFailure({ message: 'Can\'t send mail', command: 'RCPT TO', responseCode: 550, response: '550 5.1.1 <x@y>: Recipient address rejected' });
    expect(refused).toEqual({
      action: 'fail', replyClass: '5', notAccepted: true,
      transition: {
        state: 'failed', source: 'operator',
        fields: { reason: '5.1.1', smtpResponse: '550 5.1.1 <x@y>: Recipient address rejected', detail: '550 5.1.1 <x@y>: Recipient address rejected' },
      },
    });
    const bare = smtpFailure({ message: 'Message rejected', responseCode: 554 });
    expect(bare.action === 'fail' && bare.transition.fields).toEqual({ reason: '554', smtpResponse: 'Message rejected', detail: 'Message rejected' });
  });

  it.each([
    [{ message: 'try later', responseCode: 451, response: '451 4.3.0 try later' }, '4', true],
    [{ message: 'too busy', command: 'CONN', responseCode: 421, response: '421 busy' }, '4', true],
    // The connection broke once the message was on its way: it may have been accepted, so its DSN is awaited.
    [{ message: 'Connection closed', command: 'DATA', code: 'ECONNECTION' }, 'conn', false],
    [{ message: 'Timeout', code: 'ETIMEDOUT' }, 'conn', false],
  ])('retries %j (reply class %s, certainly not accepted: %s)', (err, replyClass, notAccepted) => {
    expect(smtpFailure(err)).toEqual({ action: 'retry', replyClass, notAccepted });
  });

  it.each([
    // Nothing can have been sent, and no recipient is at fault: the mailbox waits, no attempt counted.
    [{ message: 'connect ECONNREFUSED', code: 'ECONNREFUSED' }, 'unreachable'],
    [{ message: 'getaddrinfo ENOTFOUND', code: 'EDNS' }, 'unreachable'],
    [{ message: 'Connection timeout', command: 'CONN', code: 'ETIMEDOUT' }, 'unreachable'],
    // The operator refuses the mailbox itself: an operator must act, its recipients are not failed.
    [{ message: 'Invalid login', command: 'AUTH PLAIN', code: 'EAUTH', responseCode: 535, response: '535 5.7.8 Authentication credentials invalid' }, 'authentication'],
    [{ message: 'Authentication required', command: 'MAIL FROM', code: 'EENVELOPE', responseCode: 530, response: '530 5.7.0 Authentication required' }, 'authentication'],
    [{ message: 'Sender rejected', command: 'MAIL FROM', code: 'EENVELOPE', responseCode: 553, response: '553 5.7.1 <noreply@x>: Sender address rejected' }, 'sender-refused'],
    [{ message: 'TLS handshake failed', command: 'CONN', code: 'ETLS' }, 'certificate'],
    [{ message: 'certificate has expired', command: 'CONN', code: 'ESOCKET' }, 'certificate'],
  ])('pauses the mailbox on %j (%s)', (err, pause) => {
    expect(smtpFailure(err)).toMatchObject({ action: 'pause', pause, notAccepted: true });
  });

  it('fails the recipient, not the mailbox, on a 5xx to RCPT TO or DATA, 5.7.x included', () => {
    expect(smtpFailure({ message: 'x', command: 'RCPT TO', responseCode: 550, response: '550 5.7.1 <x@y>: Relay access denied' }).action).toBe('fail');
    expect(smtpFailure({ message: 'x', command: 'DATA', responseCode: 554, response: '554 5.6.0 Message rejected' }).action).toBe('fail');
  });

  it('retries a transient failure while attempts remain, then dead-letters it; a permanent one is already settled', () => {
    expect(afterFailedAttempt({ permanent: false, attemptsMade: 1, attempts: 8 })).toBe('retry');
    expect(afterFailedAttempt({ permanent: false, attemptsMade: 7, attempts: 8 })).toBe('retry');
    expect(afterFailedAttempt({ permanent: false, attemptsMade: 8, attempts: 8 })).toBe('dead-letter');
    expect(afterFailedAttempt({ permanent: true, attemptsMade: 8, attempts: 8 })).toBe('settled');
    expect(afterFailedAttempt({ permanent: true, attemptsMade: 1, attempts: 8 })).toBe('settled');
  });

  it('dead-letters with reason retries-exhausted and what the last failure said', () => {
    expect(failureText({ message: 'x', responseCode: 451, response: '451 4.3.0 try later' })).toBe('451 4.3.0 try later');
    expect(failureText({ message: 'connect ECONNREFUSED 127.0.0.1:1', code: 'ECONNREFUSED' })).toBe('ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:1');
    expect(failureText({ message: 'mail not found' })).toBe('error: mail not found');
    const t = retriesExhausted('451 4.3.0 try later');
    expect(t).toEqual({ state: 'dead-lettered', source: 'dispatcher', fields: { reason: 'retries-exhausted', detail: '451 4.3.0 try later' } });
    expect(canEnter('queued', t.state)).toBe(true);
  });

  it('replays a dead letter to queued, by the operator, reason replayed', () => {
    const t = operatorReplay();
    expect(t).toEqual({ state: 'queued', source: 'operator', fields: { reason: 'replayed', detail: 'replayed from the dead-letter queue' } });
    expect(canEnter('dead-lettered', t.state)).toBe(true);
  });

  it.each([
    ['delivered', 'delivered', '2.0.0'],
    ['relayed', 'relayed', '2.0.0'],
    ['expanded', 'expanded', '2.0.0'],
    ['delayed', 'delayed', '4.4.1'],
    ['failed', 'failed', '5.1.1'],
  ] as const)('turns a DSN action %s into %s', (action, state, status) => {
    const t = dsnTransition({ action, status, diagnosticCode: 'smtp; 250 ok' }, 42)!;
    expect(t.state).toBe(state);
    expect(t.source).toBe('dsn');
    expect(t.fields.dsnStatus).toBe(status);
    expect(t.fields.detail).toBe(`${action} ${status} smtp; 250 ok`);
    // Only a failure has a reason (its status); only a final DSN stamps dsnAt (for the DSN → MDN latency).
    expect(t.fields.reason).toBe(state === 'failed' ? status : undefined);
    expect(t.fields.dsnAt).toBe(state === 'delayed' ? undefined : 42);
    expect(canEnter('submitted', t.state)).toBe(true);
  });

  it('ignores a DSN action it does not know, including names of Object.prototype', () => {
    for (const action of ['', 'bounced', 'constructor', '__proto__', 'tostring']) expect(dsnTransition({ action, status: '5.0.0' }, 1)).toBeUndefined();
    expect(dsnTransition({ action: 'failed', status: '5.1.1' }, 1)!.fields.detail).toBe('failed 5.1.1');
  });

  it.each([
    ['displayed', 'displayed'],
    ['processed', 'processed'],
    ['deleted', 'deleted'],
    ['dispatched', 'processed'],
    ['denied', 'processing-error'],
    ['failed', 'processing-error'],
    ['something-new', 'processed'],
    ['constructor', 'processed'],
    ['__proto__', 'processed'],
  ] as const)('turns an MDN disposition %s into %s', (type, state) => {
    const t = mdnTransition({ actionMode: 'manual-action', sendingMode: 'MDN-sent-manually', type });
    expect(t).toEqual({ state, source: 'mdn', fields: { detail: `manual-action/MDN-sent-manually; ${type}` } });
  });

  it('makes a CI-SIS integration error a processing error with its code as reason, whatever the disposition', () => {
    const t = mdnTransition({
      actionMode: 'automatic-action', sendingMode: 'MDN-sent-automatically', type: 'processed',
      modifier: 'Error: 902^Identifiant de patient inconnu', error: { code: '902' },
    });
    expect(t).toEqual({
      state: 'processing-error', source: 'mdn',
      fields: { reason: '902', detail: 'automatic-action/MDN-sent-automatically; processed/Error: 902^Identifiant de patient inconnu' },
    });
    expect(canEnter('delivered', t.state)).toBe(true);
  });

  it('turns a recipient without a final DSN in time into unconfirmed, reason no-final-dsn', () => {
    const t = confirmationTimeout(86_400_000);
    expect(t).toEqual({ state: 'unconfirmed', source: 'timeout', fields: { reason: 'no-final-dsn', detail: 'no final DSN within 86400 s of submission' } });
    expect(canEnter('submitted', t.state) && canEnter('delayed', t.state)).toBe(true);
    expect(canEnter('queued', t.state)).toBe(false);
  });

  it('creates a refused recipient with the router\'s reason', () => {
    expect(routingRefusal('not-whitelisted', 'domain example.org is not in the MSSanté liste blanche')).toEqual({
      state: 'refused', reason: 'not-whitelisted', detail: 'domain example.org is not in the MSSanté liste blanche',
    });
    expect(INITIAL_STATES).toContain(routingRefusal(REASONS.routingFailed, 'HTTP 500').state);
  });

  it('names its own reason codes once', () => {
    expect(REASONS).toEqual({
      retriesExhausted: 'retries-exhausted', noFinalDsn: 'no-final-dsn', replayed: 'replayed', routingFailed: 'routing-failed',
      notWhitelisted: 'not-whitelisted', patientOpposition: 'patient-opposition', professionalsOpposition: 'professionals-opposition',
    });
  });
});

describe('delivery lifecycle: sending retry policy', () => {
  const config = { backoffMs: 2_000, maxBackoffMs: 900_000, retryBudgetMs: 24 * 3_600_000 };

  it('waits between half and all of backoffMs × 2^(n-1) after n failures, never more than maxBackoffMs', () => {
    expect(retryDelayRange(config, 1)).toEqual({ minMs: 1_000, maxMs: 2_000 });
    expect(retryDelayRange(config, 3)).toEqual({ minMs: 4_000, maxMs: 8_000 });
    expect(retryDelayRange(config, 9)).toEqual({ minMs: 256_000, maxMs: 512_000 });
    expect(retryDelayRange(config, 10)).toEqual({ minMs: 450_000, maxMs: 900_000 });
    expect(retryDelayRange(config, 1_000)).toEqual({ minMs: 450_000, maxMs: 900_000 });
  });

  it('retries within the budget counted from the first failure, makes its last attempt when it ends, then dead-letters', () => {
    const first = 1_000_000;
    expect(nextRetry(config, { firstFailureAt: first, failures: 1 }, first, () => 1)).toEqual({ retryAt: first + 2_000 });
    expect(nextRetry(config, { firstFailureAt: first, failures: 1 }, first, () => 0)).toEqual({ retryAt: first + 1_000 });
    const late = first + config.retryBudgetMs - 60_000;
    expect(nextRetry(config, { firstFailureAt: first, failures: 40 }, late, () => 1)).toEqual({ retryAt: first + config.retryBudgetMs });
    expect(nextRetry(config, { firstFailureAt: first, failures: 41 }, first + config.retryBudgetMs)).toBe('dead-letter');
  });

  it('an outage of an afternoon dead-letters nothing: the attempts it burns fit in the budget', () => {
    // Four hours of 4xx, tried as the policy says: still retried, with about thirty attempts.
    let now = 0;
    let failures = 0;
    for (;;) {
      failures += 1;
      const next = nextRetry(config, { firstFailureAt: 0, failures }, now, () => 0.5);
      if (next === 'dead-letter') throw new Error('dead-lettered');
      now = next.retryAt;
      if (now > 4 * 3_600_000) break;
    }
    expect(failures).toBeLessThan(40);
  });

  it('never waits past the budget nor less than half the backoff, whatever the draw', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 60 }), fc.integer({ min: 0, max: 86_400_000 }), fc.double({ min: 0, max: 0.999999, noNaN: true }), (failures, elapsed, r) => {
      const next = nextRetry(config, { firstFailureAt: 0, failures }, elapsed, () => r);
      if (elapsed >= config.retryBudgetMs) return next === 'dead-letter';
      if (next === 'dead-letter') return false;
      const { minMs } = retryDelayRange(config, failures);
      return next.retryAt <= config.retryBudgetMs && next.retryAt >= Math.min(config.retryBudgetMs, elapsed + minMs);
    }), { numRuns: 500 });
  });

  it('pauses a mailbox longer each time, up to maxBackoffMs', () => {
    expect([1, 2, 3, 12, 100].map((n) => pauseDelay(config, n))).toEqual([2_000, 4_000, 8_000, 900_000, 900_000]);
  });

  it('leaves BullMQ a few retries of its own, for what is neither an SMTP reply nor an outage, with the backoff it draws', () => {
    const options = sendingJobOptions(config);
    expect(options).toEqual({ attempts: 3, backoff: { type: 'exponential', delay: 2_000 } });
    expect(Backoffs.calculate(options.backoff, 2, new Error('x'), undefined as never)).toBe(4_000);
  });
});

describe('delivery lifecycle: what producers are told', () => {
  const both = { reception: true, read: true };
  const ZAM: Partial<Record<DeliveryState, [event: 'Z02' | 'Z03', success: boolean]>> = {
    delivered: ['Z02', true], relayed: ['Z02', true], expanded: ['Z02', true],
    failed: ['Z02', false], refused: ['Z02', false], 'dead-lettered': ['Z02', false],
    displayed: ['Z03', true], processed: ['Z03', true], 'processing-error': ['Z03', false],
  };

  it.each(DELIVERY_STATES)('sends for %s the ZAM of the table, when asked', (state) => {
    const expected = ZAM[state];
    const zam = zamFor(state, both, { reason: 'why', detail: 'what' });
    expect(zam).toEqual(expected ? { event: expected[0], success: expected[1], ...(expected[1] ? {} : { errorText: 'why' }) } : undefined);
    expect(zamFor(state, { reception: false, read: false }, {})).toBeUndefined();
  });

  it('sends a Z02 only when reception was asked, a Z03 only when reading was', () => {
    expect(zamFor('delivered', { reception: false, read: true }, {})).toBeUndefined();
    expect(zamFor('displayed', { reception: true, read: false }, {})).toBeUndefined();
    expect(zamFor('displayed', { reception: false, read: true }, {})).toEqual({ event: 'Z03', success: true });
  });

  it('explains a negative ZAM by the reason, else the detail, else the state', () => {
    expect(zamFor('failed', both, { detail: 'failed 5.1.1' })!.errorText).toBe('failed 5.1.1');
    expect(zamFor('dead-lettered', both, {})!.errorText).toBe('dead-lettered');
  });

  it('builds the version 1 status event of a change', () => {
    const d = { deliveryId: 'd-1', resultId: 'r-1', recipient: 'a@b.mssante.test', kind: 'professional', reason: '5.1.1', dsnStatus: '5.1.1', updatedAt: Date.UTC(2026, 10, 26, 13, 53, 40) };
    const r = { controlId: '015', sendingApplication: 'SIL-Y', source: 'lab' };
    expect(statusEventV1({ state: 'failed', previous: 'submitted' }, d, r)).toEqual({
      schema: 'mssgw.status.v1', resultId: 'r-1', controlId: '015', sendingApplication: 'SIL-Y', source: 'lab',
      deliveryId: 'd-1', recipient: 'a@b.mssante.test', recipientKind: 'professional',
      state: 'failed', previousState: 'submitted', final: true, reason: '5.1.1', dsnStatus: '5.1.1', at: '2026-11-26T13:53:40.000Z',
    });
    const created = statusEventV1({ state: 'queued', previous: '' }, { ...d, reason: undefined, dsnStatus: undefined }, r);
    expect(created).toMatchObject({ previousState: null, final: false, reason: null, dsnStatus: null });
  });
});

describe('delivery lifecycle: the API\'s schema', () => {
  it('lists exactly the lifecycle\'s states and event sources', () => {
    expect(deliverySchema.properties.state.enum).toEqual(DELIVERY_STATES);
    expect(historyEventSchema.properties.source.enum).toEqual(EVENT_SOURCES);
  });
});

describe('delivery lifecycle: property', () => {
  const refusal = smtpFailure({ message: 'x', responseCode: 550, response: '550 5.1.1 unknown' });
  if (refusal.action !== 'fail') throw new Error('a 550 is a permanent refusal');
  // Every trigger the gateway knows, in any order, any number of times (late, duplicated, out of order).
  const trigger: fc.Arbitrary<Transition> = fc.oneof(
    fc.constant(smtpAccepted('250 2.0.0 Ok: queued as ABC', 1)),
    fc.constant(refusal.transition),
    fc.constant(retriesExhausted('451 4.3.0 try later')),
    fc.constant(confirmationTimeout(60_000)),
    fc.constant(operatorReplay()),
    fc.constantFrom('delivered', 'relayed', 'expanded', 'delayed', 'failed').map((action) => dsnTransition({ action, status: '2.0.0' }, 1)!),
    fc.constantFrom('displayed', 'processed', 'deleted', 'dispatched', 'denied', 'failed')
      .map((type) => mdnTransition({ actionMode: 'automatic-action', sendingMode: 'MDN-sent-automatically', type })),
  );

  it('never takes a recipient out of a final state except by the operator\'s replay (and the listed late delay)', () => {
    fc.assert(fc.property(fc.constantFrom(...INITIAL_STATES), fc.array(trigger, { maxLength: 30 }), (initial, triggers) => {
      let state: DeliveryState = initial;
      for (const t of triggers) {
        const next: DeliveryState = canEnter(state, t.state) ? t.state : state;
        if (isFinal(state) && !isFinal(next)) {
          const reopening = REOPENINGS.some(([from, to]) => from === state && to === next);
          if (!reopening) return false;
          if (next === 'queued' && t.source !== 'operator') return false;
        }
        // A recipient with no way out stays where it is, whatever comes.
        if (EXITS[state].length === 0 && next !== state) return false;
        state = next;
      }
      return true;
    }), { numRuns: 2_000 });
  });
});
