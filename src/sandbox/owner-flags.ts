// Node flags for the processes that hold one sandbox for its whole life (the shim's server,
// the detached owner of `hako run -d`): there is one per pod, so their memory is per-pod memory.

/**
 * OWNER_NODE_FLAGS: a 1 MiB young generation instead of V8's 16 MiB semi-spaces. An idle owner
 * holding a sandbox measured 28 → 25 MiB PSS with it; its work (RPCs, stdio relays) allocates
 * little, so the extra scavenges cost nothing measurable.
 */
export const OWNER_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=1'];
