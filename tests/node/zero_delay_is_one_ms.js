// Node coerces a delay below 1 ms (0 included) to 1 ms, so setTimeout(f, 0) and
// setTimeout(g, 1) are equal-delay timers and fire in insertion order; so does a zero-period
// interval. The busy-wait makes all three due before the loop starts (see
// timers_collected_before_run.js for the millisecond-clock race it removes).
const log = (s) => console.log(s);
const busy = (ms) => { const end = process.hrtime.bigint() + BigInt(ms) * 1000000n; while (process.hrtime.bigint() < end); };
setTimeout(() => log('timer A (1 ms)'), 1);
setTimeout(() => log('timer B (0 ms)'), 0);
const iv = setInterval(() => {
  log('interval C (0 ms)');
  clearInterval(iv);
}, 0);
busy(5);
