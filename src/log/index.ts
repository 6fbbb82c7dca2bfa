// Public surface of hako's logger.
export { Logger, streamSink, memorySink, nullLogger, parseLevel } from './logger.js';
export type { Level, Fields, Sink } from './logger.js';
