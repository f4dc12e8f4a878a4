export { connectPostgres, describePostgres, inTransaction, StoreUnavailableError, textParams, type Pool, type PoolClient, type PostgresConfig, type Queryable } from './postgres.ts';
export { migrate, migrationStatus, prepareSchema, readMigrations, MigrationError, MIGRATIONS_DIR, type Migration, type MigrationStatus } from './migrate.ts';
export { ResultStore, type ReceivedResult } from './results.ts';
export { MessageBodies, mailsWrite, sha256Of, type Body, type StoredMail, type ResultToRoute, type Outbound } from './bodies.ts';
export { pruneRecords, type PruneReport } from './prune.ts';
export { searchKey, patientSearchKey, buildSearch, searchResults, encodeCursor, decodeCursor, SearchTimeoutError, type ResultSearch, type ResultSummary, type SearchPage, type SearchCursor } from './search.ts';
export { SweepQueries, withSweepLock, type SweepCursor, type UnroutedResult, type WaitingDelivery } from './sweep.ts';
export { OppositionStore, OPPOSITION_DIRECTIONS, type Opposition, type NewOpposition, type OppositionDirection, type OppositionOrigin, type OppositionSubject, type PatientIds } from './opposition.ts';
