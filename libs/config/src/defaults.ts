import { DEMO_CONFIG_FILE, loadConfig, sandboxDir } from './load.ts';
import type { GatewayConfig } from './schema.ts';

/**
 * The demo's configuration (deploy/demo/gateway.yaml: the gateway on the local sandbox), loaded as any file is, without
 * the environment's overrides, and returned as a copy of one's own to build on (tests and benchmarks change it).
 * `sandbox` is where its `${MSSGW_SANDBOX}` paths point.
 */
export function demoConfig(sandbox: string = sandboxDir()): GatewayConfig {
  return structuredClone(loadConfig({ file: DEMO_CONFIG_FILE, env: {}, sandbox }));
}

/** @deprecated The demo is no longer a default of anything: call demoConfig(), which this is. */
export const demoDefaults = demoConfig;
