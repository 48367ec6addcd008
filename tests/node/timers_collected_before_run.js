// Due timers are collected before any runs: a zero-delay timer started inside a timer
// callback waits for the next iteration, so the immediate set alongside it runs first.
const log = (s) => console.log(s);
setTimeout(() => {
  log('timer A');
  setTimeout(() => log('timer B (set in A)'), 0);
  setImmediate(() => log('immediate (set in A)'));
}, 0);
setTimeout(() => log('timer C'), 0);
// Racy without this: Node stamps timers on libuv's millisecond clock, so when the two
// setTimeout calls straddle a millisecond boundary and the first timers phase runs in that
// very millisecond, C is not yet due and runs after the immediate (seen in ~15% of runs).
// Holding the main module for 5 ms makes A and C due before the loop starts.
const busy = (ms) => { const end = process.hrtime.bigint() + BigInt(ms) * 1000000n; while (process.hrtime.bigint() < end); };
busy(5);
