// Public surface of hako's configuration: the schema, its defaults and the loader.
export { SCHEMA, defaultConfig } from './schema.js';
export type { HakoConfig, KeySpec, KeyType } from './schema.js';
export { DEFAULT_CONFIG_PATH, loadConfig, parseConfig, renderSchema } from './load.js';
export type { LoadedConfig } from './load.js';
