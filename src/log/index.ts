// Public surface of hako's logger.
export { Logger, streamSink, fdSink, memorySink, nullLogger, parseLevel } from './logger.js';
export type { Level, Fields, Sink } from './logger.js';
