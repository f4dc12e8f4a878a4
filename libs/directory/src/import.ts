import { readExtraction } from './extraction.ts';
import { openExtraction } from './source.ts';
import type { DirectoryStore, ImportOptions, ImportReport } from './store.ts';

/** Opens an extraction (file, zip or URL), imports it as the new directory and closes it, whatever happens. */
export async function importExtraction(
  store: DirectoryStore,
  location: string,
  options: ImportOptions & { caFile?: string | undefined } = {},
): Promise<ImportReport> {
  const { caFile, ...importOptions } = options;
  const source = await openExtraction(location, { caFile });
  try {
    return await store.import(readExtraction(source.text), source, importOptions);
  } finally {
    await source.close();
  }
}
