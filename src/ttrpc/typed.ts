// Typed bindings between protobuf-es service descriptors and the byte-level ttRPC
// client and server: encode and decode once, here, for every service.

import { create, fromBinary, toBinary, type DescMessage, type DescService, type MessageInitShape, type MessageShape } from '@bufbuild/protobuf';
import type { GenService, GenServiceMethods } from '@bufbuild/protobuf/codegenv2';
import { Code, HakoError } from '../errors/index.js';
import type { CallOptions, Client } from './client.js';
import type { CallContext, Server } from './server.js';

type Methods<S> = S extends GenService<infer M> ? M : GenServiceMethods;

/** ServiceClient is the typed client of service S: one async function per method. */
export type ServiceClient<S extends DescService> = {
  [K in keyof Methods<S>]: (
    req: MessageInitShape<Methods<S>[K]['input']>,
    opts?: CallOptions,
  ) => Promise<MessageShape<Methods<S>[K]['output']>>;
};

/** ServiceImpl is a partial implementation of S; missing methods answer UNIMPLEMENTED. */
export type ServiceImpl<S extends DescService> = {
  [K in keyof Methods<S>]?: (
    req: MessageShape<Methods<S>[K]['input']>,
    ctx: CallContext,
  ) => Promise<MessageInitShape<Methods<S>[K]['output']>>;
};

/** createClient binds service S to a ttRPC client connection. */
export function createClient<S extends DescService>(service: S, client: Client): ServiceClient<S> {
  const out: Record<string, unknown> = {};
  for (const m of service.methods) {
    out[m.localName] = async (req: unknown, opts?: CallOptions) => {
      const payload = toBinary(m.input, create(m.input, req as never));
      const resp = await client.call(service.typeName, m.name, payload, opts);
      return decode(m.output, resp, `${service.typeName}/${m.name}: malformed response`, Code.INTERNAL);
    };
  }
  return out as ServiceClient<S>;
}

/** registerService registers every implemented method of S on server. */
export function registerService<S extends DescService>(server: Server, service: S, impl: ServiceImpl<S>): void {
  const table = impl as Record<string, ((req: unknown, ctx: CallContext) => Promise<unknown>) | undefined>;
  for (const m of service.methods) {
    const fn = table[m.localName];
    if (!fn) continue;
    server.register(service.typeName, m.name, async (payload, ctx) => {
      const req = decode(m.input, payload, `${m.name}: malformed request`, Code.INVALID_ARGUMENT);
      const res = await fn.call(impl, req, ctx);
      return toBinary(m.output, create(m.output, res as never));
    });
  }
}

function decode(schema: DescMessage, bytes: Uint8Array, what: string, code: Code): never | MessageShape<DescMessage> {
  try {
    return fromBinary(schema, bytes);
  } catch (err) {
    throw new HakoError(code, `${what}: ${(err as Error).message}`);
  }
}
