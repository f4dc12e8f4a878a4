import { defineConfig } from 'vitest/config';

// One suite: unit tests and integration tests against the real sandbox (Redis, Kafka, Postfix, Dovecot,
// Prometheus). Files run one after another: the integration tests share the sandbox operator.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: ['default'],
  },
});
