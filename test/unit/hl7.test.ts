import { describe, expect, it } from 'vitest';
import { buildAck, decodeHl7, Er7Message, frame, Hl7Error, MllpDecoder, parseAck, parseResult, readResult } from '@mssgw/hl7';
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

  it('refuses MetaDMPMSS flags outside the allowed MSSanté combinations', () => {
    const text = makeCisisResult({ controlId: 'C3', patient, doctors: [DOCTORS[0]!], toPatient: true })
      .replace('MASQUE_PS^Masqué aux professionnels de Santé^MetaDMPMSS||N', 'MASQUE_PS^Masqué aux professionnels de Santé^MetaDMPMSS||Y');
    expect(() => parseResult(Buffer.from(text))).toThrow(/combination the volet does not allow/);
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

  it('uses the ERR-1 layout for v2.3 / v2.4 senders', () => {
    const err = new Hl7Error('dataType', 'bad', { segment: 'OBX', sequence: 4, field: 5 });
    expect(buildAck({ ...target, version: '2.3.1' }, 'AE', err)).toContain('\rERR|OBX^4^5^102&Data type error&HL70357\r');
  });
});
