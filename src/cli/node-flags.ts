// node-flags.ts — the V8 options portlab runs with. The CLI's shebang and `npm start` carry the same list, and
// test/cli.test.ts checks that they do; the benchmark and the tests start portlab with it too.
//
// Why: every socket read is a fresh 64 KiB Buffer outside the JS heap, and V8 counts those bytes against the old
// generation's limit until a scavenge frees them. After a burst of L7 traffic V8 sets that limit close to the live heap,
// so bulk L4 traffic then started a full mark-compact every few tens of MiB (6–7 per 256 MiB, ~25% more CPU per byte).
// A 64 MiB floor for the old generation keeps them away; it costs at most that much heap before the first full GC.
export const NODE_FLAGS: readonly string[] = ['--initial-old-space-size=64'];
