// Public surface of hako's ttRPC layer: framing, client, server and typed bindings.
export { HEADER_SIZE, MAX_MESSAGE_SIZE, FrameType, FrameReader, encodeFrame } from './frame.js';
export type { Frame, FrameEvents } from './frame.js';
export { Client } from './client.js';
export type { CallOptions, ClientOptions } from './client.js';
export { Server, ServerConnection, NAMESPACE_KEY } from './server.js';
export type { CallContext, Handler, ServerOptions } from './server.js';
export { createClient, registerService } from './typed.js';
export type { ServiceClient, ServiceImpl } from './typed.js';
export { dialUnix } from './dial.js';
