export { GatewayConfigSchema, type GatewayConfig, type MllpListenerConfig, type MllpLimitsConfig, mllpLimitsOf, type ApiAccessConfig, apiAccessOf, type ApplicativeMailboxConfig, type SecretRef, type RecipientRole, type SourceRouting, type RoutingConfig } from './schema.ts';
export { loadConfig, readSecret, ConfigError, DEMO_CONFIG_FILE, sandboxDir, type LoadOptions } from './load.ts';
export { demoConfig, demoDefaults } from './defaults.ts';
