import type { ResultAction } from '@mssgw/hl7';

export type Audience = 'professional' | 'patient';

/**
 * Default bodies when the producer sends no CORPSMAIL_PS / CORPSMAIL_PATIENT. For a replacement or a deletion the
 * body must say so (ANS volet). A deployment overrides them in configuration.
 */
export const DEFAULT_BODIES: Record<Audience, Record<ResultAction, string>> = {
  professional: {
    initial: 'Bonjour,\n\nVeuillez trouver ci-joint le document « {label} » concernant votre patient(e).\n\nCe message est envoyé automatiquement, merci de ne pas y répondre.\n',
    replace: 'Bonjour,\n\nLe document ci-joint « {label} » remplace le document transmis précédemment pour ce patient. Merci de remplacer l\'ancienne version.\n\nCe message est envoyé automatiquement, merci de ne pas y répondre.\n',
    delete: 'Bonjour,\n\nLe document « {label} » transmis précédemment pour ce patient doit être supprimé : il a été annulé par son auteur.\n\nCe message est envoyé automatiquement, merci de ne pas y répondre.\n',
  },
  patient: {
    initial: 'Bonjour,\n\nVotre document « {label} » est disponible en pièce jointe.\n',
    replace: 'Bonjour,\n\nLe document « {label} » ci-joint remplace celui qui vous a été envoyé précédemment.\n',
    delete: 'Bonjour,\n\nLe document « {label} » qui vous a été envoyé précédemment a été annulé et doit être supprimé.\n',
  },
};

export type BodyOverrides = Partial<Record<Audience, Partial<Record<ResultAction, string>>>>;

export const fillTemplate = (template: string, values: Record<string, string>): string =>
  template.replace(/\{(\w+)\}/g, (m, k: string) => values[k] ?? m);
