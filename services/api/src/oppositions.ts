import type { FastifyInstance } from 'fastify';
import { oppositionDirections, parseOppositionSubject } from '@mssgw/routing';
import type { ServiceContext } from '@mssgw/runtime';
import { OppositionStore, type Opposition } from '@mssgw/store';

const subjectSchema = { type: 'string', minLength: 5, maxLength: 200, description: 'INS:<ins> or IPP:<ipp>@<facility>' } as const;
const ids = (list: Opposition[]) => list.map((o) => `opposition:${o.id}`);

/**
 * The patients' oppositions (issue #25, docs/recipients.md), as `mssgw opposition` manages them: listed, recorded and
 * withdrawn by an operator (they name patients: no viewer). The audit trail keeps the oppositions' row ids, never the
 * patient's id.
 */
export function oppositionRoutes(app: FastifyInstance, ctx: ServiceContext): void {
  const store = new OppositionStore(ctx.pg);
  const operator = { role: 'operator' as const };

  app.get(
    '/api/v1/oppositions',
    { config: operator, schema: { querystring: { type: 'object', additionalProperties: false, properties: { patient: subjectSchema, limit: { type: 'integer', minimum: 1, maximum: 10_000 } } } } },
    async (req, reply) => {
      const q = req.query as { patient?: string; limit?: number };
      req.audit.filters = Object.keys(q);
      const subject = q.patient === undefined ? undefined : parseOppositionSubject(q.patient);
      if (q.patient !== undefined && !subject) return reply.code(400).send({ error: 'bad-request', reason: 'patient: expected INS:<ins> or IPP:<ipp>@<facility>' });
      const list = await store.list({ ...(subject ? { patientId: subject.patientId } : {}), limit: q.limit ?? 1000 });
      const shown = subject?.idType === 'ipp' ? list.filter((o) => o.idType !== 'ipp' || o.facility.toLowerCase() === subject.facility.toLowerCase()) : list;
      req.audit.ids = ids(shown);
      return { oppositions: shown };
    },
  );

  app.post(
    '/api/v1/oppositions',
    {
      config: operator,
      schema: {
        body: {
          type: 'object', additionalProperties: false, required: ['patient', 'direction'],
          properties: { patient: subjectSchema, direction: { type: 'string', enum: ['patient', 'professionals', 'both'] }, date: { type: 'string', maxLength: 40 } },
        },
      },
    },
    async (req, reply) => {
      const body = req.body as { patient: string; direction: string; date?: string };
      const subject = parseOppositionSubject(body.patient);
      if (!subject || subject.idType === 'any') return reply.code(400).send({ error: 'bad-request', reason: 'patient: expected INS:<ins> or IPP:<ipp>@<facility> (an IPP alone means nothing across facilities)' });
      const opposedAt = body.date === undefined ? Date.now() : Date.parse(body.date);
      if (Number.isNaN(opposedAt)) return reply.code(400).send({ error: 'bad-request', reason: 'date: expected an ISO 8601 date' });
      const added = await store.add(oppositionDirections(body.direction)!.map((direction) => ({ ...subject, direction, opposedAt })), 'api');
      req.audit.ids = ids(added);
      return reply.code(201).send({ added });
    },
  );

  app.delete(
    '/api/v1/oppositions/:id',
    { config: operator, schema: { params: { type: 'object', properties: { id: { type: 'string', pattern: '^[0-9]{1,18}$' } }, required: ['id'] } } },
    async (req, reply) => {
      const { id } = req.params as { id: string };
      req.audit.ids = [`opposition:${id}`];
      const removed = await store.removeById(id);
      if (!removed) return reply.code(404).send({ error: 'not-found', reason: `no opposition ${id}` });
      return reply.code(204).send();
    },
  );
}
