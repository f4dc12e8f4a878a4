import { describe, expect, it } from 'vitest';
import {
  buildAck, decodeHl7, Er7Message, frame, Hl7Error, lenientFlags, MAX_ERR_SEGMENTS, MllpDecoder, parseAck, parseResult, readResult, Reason, REQUIRED_FLAGS, warning,
  type Hl7Warning,
} from '@mssgw/hl7';
import { mailBodyData, withCutMailBody } from '../support/damaged.ts';
import { DOCTORS, makeCisisResult, makeRawLabResult, PATIENTS } from '../support/samples.ts';

const MSG = 'MSH|^~\\&|A|B|C|D|20260101||ORU^R01|X1|P|2.5\rPID|||1\r';

describe('MLLP framing', () => {
  it('reassembles frames split at every byte, including between FS and CR', () => {
    const d = new MllpDecoder(1024);
    const wire = Buffer.concat([frame(MSG), frame('MSH|second')]);
    const out = [...wire].flatMap((b) => d.push(Buffer.from([b])));
    expect(out.map((e) => (e.type === 'message' ? e.payload.toString() : e.type))).toEqual([MSG, 'MSH|second']);
  });

  it('drops an oversized frame as it comes and reports it, then reads the next one', () => {
    const d = new MllpDecoder(10);
    const events = d.push(Buffer.concat([frame('x'.repeat(50)), frame('ok')]));
    expect(events).toEqual([{ type: 'oversized', bytes: 50 }, { type: 'message', payload: Buffer.from('ok') }]);
    expect(d.buffered).toBe(0);
  });

  it('reports bytes outside any frame', () => {
    const d = new MllpDecoder(100);
    expect(d.push(Buffer.concat([Buffer.from('GET / HTTP/1.1\r\n'), frame('MSH|a')]))).toEqual([
      { type: 'garbage', bytes: 16 },
      { type: 'message', payload: Buffer.from('MSH|a') },
    ]);
  });
});

describe('character sets', () => {
  it('decodes Latin-9 (€ and Œ, which Latin-1 lacks) when MSH-18 says 8859/15', () => {
    const text = 'MSH|^~\\&|A|B|C|D|20260101||ORU^R01|X|P|2.5|||||FRA|8859/15\rNTE|1||Cœur 10 €\r';
    const bytes = Buffer.from(text.replace('œ', '\u0000').replace('€', '\u0001'), 'latin1');
    bytes[bytes.indexOf(0)] = 0xbd; // œ in ISO-8859-15
    bytes[bytes.indexOf(1)] = 0xa4; // € in ISO-8859-15
    expect(decodeHl7(bytes)).toMatchObject({ charset: 'iso-8859-15', declared: '8859/15', text });
  });

  it('strips a UTF-8 byte order mark and reads UTF-8', () => {
    const d = decodeHl7(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('MSH|^~\\&|A|B|C|D|1||ORU^R01|X|P|2.5|||||FRA|UNICODE UTF-8\rNTE|1||é\r')]));
    expect(d.text.startsWith('MSH')).toBe(true);
    expect(d.text).toContain('é');
  });
});

describe('ER7 reading', () => {
  it('accepts CR, LF and CRLF separators and resolves escape sequences', () => {
    const m = new Er7Message('MSH|^~\\&|A|B\r\nPID|||1^^^X&1.2&ISO~2\nNTE|1||a\\F\\b\\S\\c\\E\\d\\.br\\e\\X41\\\r');
    expect(m.segments.map((s) => s.id)).toEqual(['MSH', 'PID', 'NTE']);
    expect(m.get(m.first('NTE'), 3)).toBe('a|b^c\\d\neA');
    expect(m.repetitions(Er7Message.raw(m.first('PID'), 3))).toHaveLength(2);
    expect(m.get(m.first('PID'), 3, 4, 2)).toBe('1.2');
  });

  it('refuses what is not HL7 with AR', () => {
    expect(() => new Er7Message('hello world')).toThrow(Hl7Error);
    try {
      new Er7Message('hello world');
    } catch (err) {
      expect((err as Hl7Error).ackCode).toBe('AR');
    }
  });
});

describe('results', () => {
  const patient = PATIENTS[0]!;
  it('reads a CI-SIS ORU: action, INS, PRT recipients, flags, the CDA', () => {
    const r = parseResult(Buffer.from(makeCisisResult({ controlId: 'C1', patient, doctors: [DOCTORS[0]!], toPatient: true, noReplyToPatient: true, readReceipt: true })));
    expect(r).toMatchObject({ messageType: 'ORU', event: 'R01', version: '2.5', controlId: 'C1', profile: 'cisis', action: 'initial', noReplyToPatient: true });
    expect(r.patient.ins).toEqual({ value: patient.ins, oid: '1.2.250.1.213.1.4.10', qualified: true });
    expect(r.participants.filter((p) => p.role === 'recipient').map((p) => [p.kind, p.address])).toEqual([
      ['person', DOCTORS[0]!.address],
      ['patient', `${patient.ins}@patient.mssante.fr`],
    ]);
    expect(r.flags).toMatchObject({ DESTMSSANTEPS: true, DESTMSSANTEPAT: true, ACK_LECTURE_MSS: true, MASQUE_PS: false });
    expect(r.documents).toHaveLength(1);
    expect(r.documents[0]).toMatchObject({ kind: 'cda', code: '11502-2' });
  });

  it('reads MDM T10 as a replacement and T04 as a deletion', () => {
    const t10 = parseResult(Buffer.from(makeCisisResult({ controlId: 'M1', patient, doctors: [DOCTORS[2]!], message: 'MDM', kind: 'imaging', action: 'replace' })));
    expect([t10.event, t10.action, t10.documentCode]).toEqual(['T10', 'replace', '18748-4']);
    const t04 = parseResult(Buffer.from(makeCisisResult({ controlId: 'M2', patient, doctors: [DOCTORS[2]!], message: 'MDM', kind: 'imaging', action: 'delete' })));
    expect(t04.action).toBe('delete');
  });

  it('refuses a result whose OBX-11 contradicts ORC-1, naming the field', () => {
    const text = makeCisisResult({ controlId: 'C2', patient, doctors: [DOCTORS[0]!] }).replace('||||||F|\rPRT', '||||||C|\rPRT');
    expect(() => parseResult(Buffer.from(text))).toThrow(/OBX-11 "C" contradicts ORC-1 "NW"/);
  });

  it('refuses MetaDMPMSS flags outside the allowed MSSanté combinations, naming the combination and what its row needs', () => {
    const text = makeCisisResult({ controlId: 'C3', patient, doctors: [DOCTORS[0]!], toPatient: true })
      .replace('MASQUE_PS^Masqué aux professionnels de Santé^MetaDMPMSS||N', 'MASQUE_PS^Masqué aux professionnels de Santé^MetaDMPMSS||Y');
    const err = refusal(() => parseResult(Buffer.from(text)));
    expect([err.ackCode, err.code, err.reasonCode]).toEqual(['AE', '103', 'FLAG_COMBINATION']);
    expect(err.message).toBe(
      "MetaDMPMSS combination not in the volet's MSSanté table: MASQUE_PS=Y INVISIBLE_PATIENT=N INVISIBLE_REP_LEGAUX=N CONNEXION_SECRETE=N " +
        'MODIF_CONF_CODE=N DESTDMP=N DESTMSSANTEPS=Y DESTMSSANTEPAT=Y; the row "professionals and patient" needs MASQUE_PS=N',
    );
    // The ERR points at the flag the row needs changed (MASQUE_PS, the first flag OBX).
    expect(err.location).toEqual({ segment: 'OBX', sequence: text.split('\r').findIndex((l) => l.includes('MASQUE_PS')) + 1, field: 5 });
  });

  it('turns the numeric results of a raw lab ORU into a readable report, with ordering and copied practitioners', () => {
    const r = parseResult(Buffer.from(makeRawLabResult({ controlId: 'R1', patient, ordering: DOCTORS[0]!, copies: [DOCTORS[1]!] }), 'latin1'));
    expect(r.profile).toBe('raw');
    expect(r.participants.map((p) => [p.role, p.origin, p.id, p.idType])).toEqual([
      ['ordering', 'ORC-12', DOCTORS[0]!.rpps, 'RPPS'],
      ['copy', 'OBR-28', DOCTORS[1]!.rpps, 'RPPS'],
    ]);
    expect(r.documents[0]!.content.toString()).toContain('Potassium: 5.9 mmol/L (ref. 3.5-5.1) [H]');
  });

  it('reports invalid Base64 as a data type error at OBX-5', () => {
    const text = makeCisisResult({ controlId: 'C4', patient, doctors: [DOCTORS[0]!] }).replace(/\^Base64\^[A-Za-z0-9+/=]+/, '^Base64^not*base64');
    try {
      readResult(new Er7Message(text));
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(Hl7Error);
      expect((err as Hl7Error).code).toBe('102');
      expect((err as Hl7Error).location).toMatchObject({ segment: 'OBX', field: 5 });
    }
  });

  it('tells Base64 that Node would decode leniently from valid Base64, and accepts line-wrapped Base64', () => {
    const message = makeCisisResult({ controlId: 'C5', patient, doctors: [DOCTORS[0]!] });
    const b64 = /\^Base64\^([A-Za-z0-9+/=]+)/.exec(message)![1]!;
    const withData = (data: string) => () => readResult(new Er7Message(message.replace(b64, data)));
    const cda = withData(b64)().documents[0]!;
    // Base64url letters, padding inside the data, a character outside the alphabet: each is refused.
    for (const bad of [`${b64.slice(0, 8)}-_${b64.slice(10)}`, `${b64.slice(0, 8)}=${b64.slice(9)}`, `${b64.slice(0, 8)}!${b64.slice(9)}`]) {
      expect(withData(bad)).toThrow(/not valid Base64/);
    }
    // Wrapped at 76 characters with escaped line breaks (\.br\), as some producers send it: the same document.
    const wrapped = b64.match(/.{1,76}/g)!.join('\\.br\\');
    expect(withData(wrapped)().documents[0]!.sha256).toBe(cda.sha256);
  });
});

/** The Hl7Error a call throws (fails the test when it does not throw one). */
function refusal(fn: () => unknown): Hl7Error {
  try {
    fn();
  } catch (err) {
    if (err instanceof Hl7Error) return err;
    throw err;
  }
  return expect.unreachable('no Hl7Error thrown');
}

/** The position (from 1) of the first segment containing `text`, as ERR-2 counts them. */
const segmentOf = (message: string, text: string) => message.split('\r').findIndex((l) => l.includes(text)) + 1;
const codes = (warnings: Hl7Warning[]) => warnings.map((w) => Reason[w.reason].code);

describe('what the intake tolerates, and what it still refuses', () => {
  const patient = PATIENTS[0]!;
  const withBody = (body: string) => makeCisisResult({ controlId: 'T1', patient, doctors: [DOCTORS[0]!], bodyPs: body });
  const withBodyData = (data: string) => {
    const m = withBody('Cher confrère, voici le compte rendu.');
    return m.replace(mailBodyData(m), data);
  };

  it('reads a producer\'s mail body when it decodes to text, without a warning', () => {
    const r = parseResult(Buffer.from(withBody('Cher confrère,\nrésultats joints.')));
    expect(r.mailBody.professional).toBe('Cher confrère,\nrésultats joints.');
    expect(r.warnings).toEqual([]);
  });

  it('takes a result whose CORPSMAIL_PS is cut short: no producer body, a warning naming the OBX; "reject" refuses it', () => {
    const cut = withCutMailBody(withBody('Cher confrère, voici le compte rendu.'));
    const where = { segment: 'OBX', sequence: segmentOf(cut, 'CORPSMAIL_PS'), field: 5 };
    const r = parseResult(Buffer.from(cut));
    expect(r.mailBody).toEqual({});
    expect(r.warnings).toEqual([{ reason: 'mailBodyBase64', location: where, message: 'OBX 12 (CORPSMAIL_PS): its Base64 is cut short or invalid; ignored, the default body is sent' }]);
    // The rest of the result is read as usual.
    expect(r.documents[0]!.kind).toBe('cda');
    const err = refusal(() => parseResult(Buffer.from(cut), { mailBody: 'reject', flagMatrix: 'strict' }));
    expect([err.ackCode, err.code, err.reasonCode, err.location]).toEqual(['AE', '102', 'CORPSMAIL_BASE64', where]);
  });

  it('drops a mail body that is not text (binary, control characters, an unknown ED encoding), with its own reason', () => {
    const binary = Buffer.from([0xff, 0xfe, 0x00, 0x41, 0x80]).toString('base64');
    const control = Buffer.from('Bonjour\u0000\u0007', 'utf8').toString('base64');
    for (const data of [binary, control]) {
      const r = parseResult(Buffer.from(withBodyData(data)));
      expect([r.mailBody.professional, codes(r.warnings)]).toEqual([undefined, ['CORPSMAIL_NOT_TEXT']]);
    }
    const hex = withBodyData('QUJD').replace('^TEXT^^Base64^QUJD', '^TEXT^^Hex^414243');
    expect(codes(parseResult(Buffer.from(hex)).warnings)).toEqual(['CORPSMAIL_ENCODING']);
    expect(refusal(() => parseResult(Buffer.from(hex), { mailBody: 'reject', flagMatrix: 'strict' })).reasonCode).toBe('CORPSMAIL_ENCODING');
    // An empty body is no body: the default one goes, nothing to warn about.
    expect(parseResult(Buffer.from(withBodyData(''))).warnings).toEqual([]);
  });

  it('reads a Latin-9 body in the message\'s own charset when it is not UTF-8', () => {
    const latin9 = Buffer.from('Cher confr\xe8re', 'latin1').toString('base64');
    const text = withBodyData(latin9).replace('UNICODE UTF-8', '8859/15');
    const r = parseResult(Buffer.from(text, 'latin1'));
    expect([r.mailBody.professional, r.warnings]).toEqual(['Cher confrère', []]);
  });

  it('keeps a hostile message\'s warnings bounded', () => {
    const bad = `OBX|12|ED|CORPSMAIL_PS^Corps^MetaDMPMSS||^TEXT^^Base64^QUJ||||||F|\r`;
    const r = parseResult(Buffer.from(makeCisisResult({ controlId: 'T2', patient, doctors: [DOCTORS[0]!] }) + bad.repeat(500)));
    expect(r.warnings).toHaveLength(20);
  });

  it('skips an empty ED next to structured values and sends the values as the readable report', () => {
    const hl7 = makeRawLabResult({ controlId: 'T3', patient, ordering: DOCTORS[0]! }).replace('OBX|1|NM|', 'OBX|1|ED|11502-2^CR^LN||^application^pdf^Base64^||||||F|\rOBX|1|NM|');
    const r = parseResult(Buffer.from(hl7, 'latin1'));
    expect(r.documents.map((d) => d.kind)).toEqual(['text']);
    expect(r.documents[0]!.content.toString()).toContain('Potassium: 5.9 mmol/L (ref. 3.5-5.1) [H]');
    expect(r.warnings).toEqual([warning('edEmpty', 'OBX 1: empty ED skipped; the report is sent from the other OBX', { segment: 'OBX', sequence: segmentOf(hl7, '|ED|'), field: 5 })]);
    // Its OBX-11 still counts: an empty ED saying C contradicts ORC-1 NW.
    expect(refusal(() => parseResult(Buffer.from(hl7.replace('Base64^||||||F|', 'Base64^||||||C|'), 'latin1'))).reasonCode).toBe('ACTION_MISMATCH');
  });

  it('sends an MDM whose document OBX is empty from its text OBX, and refuses one with nothing at all to send', () => {
    const mdm = makeCisisResult({ controlId: 'T4', patient, doctors: [DOCTORS[2]!], message: 'MDM', kind: 'imaging' });
    const empty = mdm.replace(/\^TEXT\^XML\^Base64\^[A-Za-z0-9+/=]+/, '^TEXT^XML^Base64^');
    const err = refusal(() => parseResult(Buffer.from(empty)));
    expect([err.ackCode, err.reasonCode, err.location]).toEqual(['AE', 'NO_REPORT', { segment: 'OBX', sequence: segmentOf(empty, '|ED|'), field: 5 }]);
    expect(err.message).toBe('the report is empty: OBX 1 holds no data and no other OBX carries a result');
    const withText = empty.replace(/(OBX\|1\|ED\|[^\r]*\r)/, '$1OBX|13|TX|18748-4^CR^LN||Scanner thoracique~Pas d\'anomalie||||||F|\r');
    const r = parseResult(Buffer.from(withText));
    expect(r.documents[0]!.content.toString()).toBe("Scanner thoracique\nPas d'anomalie");
    expect(codes(r.warnings)).toEqual(['ED_EMPTY']);
  });

  const psOnlyVisible = (m: string) => m.replace('INVISIBLE_PATIENT^Document Non Visible par le patient^MetaDMPMSS||Y', 'INVISIBLE_PATIENT^Document Non Visible par le patient^MetaDMPMSS||N');

  it('maps a combination outside the table for a lenient source, keeping only who the flags let see the document', () => {
    // Professionals only, but not invisible to the patient: the ANS's own T04 / T10 examples.
    const text = psOnlyVisible(makeCisisResult({ controlId: 'T5', patient, doctors: [DOCTORS[0]!] }));
    expect(refusal(() => parseResult(Buffer.from(text))).reasonCode).toBe('FLAG_COMBINATION');
    const r = parseResult(Buffer.from(text), { mailBody: 'warn', flagMatrix: 'lenient' });
    expect([r.flags['DESTMSSANTEPS'], r.flags['DESTMSSANTEPAT'], r.flags['INVISIBLE_PATIENT']]).toEqual([true, false, false]);
    expect(codes(r.warnings)).toEqual(['FLAG_COMBINATION']);
    expect(r.warnings[0]!.message).toMatch(/^MetaDMPMSS combination not in the volet's MSSanté table: .* DESTMSSANTEPS=Y DESTMSSANTEPAT=N; the row "professionals only" needs INVISIBLE_PATIENT=Y; sent to professionals only \(lenient mapping\)$/);
    // Masked to professionals and hidden from the patient by a secret stay: nobody is left, refused even when lenient.
    const nobody = makeCisisResult({ controlId: 'T6', patient, doctors: [DOCTORS[0]!], toPatient: true })
      .replace('MASQUE_PS^Masqué aux professionnels de Santé^MetaDMPMSS||N', 'MASQUE_PS^Masqué aux professionnels de Santé^MetaDMPMSS||Y')
      .replace('CONNEXION_SECRETE^Connexion Secrete^MetaDMPMSS||N', 'CONNEXION_SECRETE^Connexion Secrete^MetaDMPMSS||Y');
    const err = refusal(() => parseResult(Buffer.from(nobody), { mailBody: 'warn', flagMatrix: 'lenient' }));
    expect([err.reasonCode, err.message]).toEqual(['FLAG_COMBINATION', expect.stringMatching(/; the lenient mapping leaves no MSSanté recipient$/)]);
  });

  it('lenient mapping, over every combination: never adds an audience, never reaches one a flag hides from, keeps allowed ones', () => {
    const names = REQUIRED_FLAGS.filter((n) => n !== 'MODIF_CONF_CODE');
    for (let bits = 0; bits < 1 << names.length; bits++) {
      const f = Object.fromEntries(names.map((n, i) => [n, Boolean(bits & (1 << i))]));
      const mapped = lenientFlags(f);
      if (!mapped) {
        expect(f['DESTMSSANTEPS'] && !f['MASQUE_PS']).toBeFalsy();
        continue;
      }
      const ps = mapped.flags['DESTMSSANTEPS']!;
      const pat = mapped.flags['DESTMSSANTEPAT']!;
      expect(ps ? f['DESTMSSANTEPS'] && !f['MASQUE_PS'] : true).toBe(true);
      expect(pat ? f['DESTMSSANTEPAT'] && !f['INVISIBLE_PATIENT'] && !f['INVISIBLE_REP_LEGAUX'] && !f['CONNEXION_SECRETE'] : true).toBe(true);
      // Only the two destination flags may change.
      expect(Object.entries(mapped.flags).filter(([k, v]) => f[k] !== v).map(([k]) => k).every((k) => k.startsWith('DESTMSSANTE'))).toBe(true);
    }
  });

  it('gives every reason a distinct stable code that fits ERR-5', () => {
    const all = Object.values(Reason).map((r) => r.code);
    expect(new Set(all).size).toBe(all.length);
    for (const c of all) expect(c).toMatch(/^[A-Z0-9_]{1,20}$/);
  });
});

describe('acknowledgements', () => {
  const target = { controlId: 'X9', event: 'R01', version: '2.5', sendingApplication: 'SIL', sendingFacility: 'LAB', receivingApplication: 'GW', receivingFacility: 'CHU' };
  it('answers AA to the sender, echoing the control id', () => {
    const ack = parseAck(Buffer.from(buildAck(target, 'AA')));
    expect([ack.code, ack.controlId]).toEqual(['AA', 'X9']);
    expect(buildAck(target, 'AA')).toMatch(/^MSH\|\^~\\&\|GW\|CHU\|SIL\|LAB\|\d{14}\|\|ACK\^R01\^ACK\|/);
  });

  it('carries an ERR segment with the table 0357 code, the location and the text (v2.5 layout)', () => {
    const err = new Hl7Error('requiredFieldMissing', 'MSH-10 is empty', { segment: 'MSH', sequence: 1, field: 10 });
    const text = buildAck(target, 'AE', err);
    expect(text).toContain('\rERR||MSH^1^10|101^Required field missing^HL70357|E||||MSH-10 is empty\r');
    expect(parseAck(Buffer.from(text))).toMatchObject({ code: 'AE', text: 'MSH-10 is empty' });
  });

  it('answers AA with one ERR of severity W per warning, with the reason code in ERR-5 and no patient data', () => {
    const w = [warning('mailBodyBase64', 'OBX 13 (CORPSMAIL_PS): its Base64 is cut short or invalid', { segment: 'OBX', sequence: 22, field: 5 }), warning('edEmpty', 'OBX 1: empty ED skipped')];
    const text = buildAck(target, 'AA', undefined, w);
    expect(text.split('\r').filter((l) => l.startsWith('ERR'))).toEqual([
      `ERR||OBX^22^5|102^Data type error^HL70357|W|CORPSMAIL_BASE64^${Reason.mailBodyBase64.rule}^99MSSGW|||OBX 13 (CORPSMAIL_PS): its Base64 is cut short or invalid`,
      `ERR|||101^Required field missing^HL70357|W|ED_EMPTY^${Reason.edEmpty.rule}^99MSSGW|||OBX 1: empty ED skipped`,
    ]);
    expect(parseAck(Buffer.from(text))).toMatchObject({ code: 'AA', controlId: 'X9' });
    // A refusal puts its error first, then the warnings gathered before it; hostile input gets a bounded ACK.
    const many = Array.from({ length: 50 }, () => w[1]!);
    const nack = buildAck(target, 'AE', Hl7Error.of('flagCombination', 'bad flags', { segment: 'OBX' }), many).split('\r').filter((l) => l.startsWith('ERR'));
    expect(nack).toHaveLength(MAX_ERR_SEGMENTS);
    expect(nack[0]).toMatch(/^ERR\|\|OBX\|103\^Table value not found\^HL70357\|E\|FLAG_COMBINATION\^/);
    expect(nack.slice(1).every((l) => l.includes('|W|ED_EMPTY^'))).toBe(true);
  });

  it('uses the ERR-1 layout for v2.3 / v2.4 senders', () => {
    const err = new Hl7Error('dataType', 'bad', { segment: 'OBX', sequence: 4, field: 5 });
    expect(buildAck({ ...target, version: '2.3.1' }, 'AE', err)).toContain('\rERR|OBX^4^5^102&Data type error&HL70357\r');
  });
});
