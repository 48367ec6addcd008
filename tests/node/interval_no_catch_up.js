// Intervals reschedule from the callback's start, with no catch-up burst.
// Period 100 ms. Run 1 busy-waits 200 ms; A (set at run 1's start + 150 ms) is overdue with
// run 2 (due at run 1's start + 100 ms) when run 1 returns: deadline order puts run 2 first
// (rescheduling from the end would put it at start + 300 ms, after A). B is set in run 2 for
// + 50 ms; run 3 is due at run 2's start + 100 ms (a catch-up burst would run it at once).
const log = (s) => console.log(s);
const busy = (ms) => { const end = process.hrtime.bigint() + BigInt(ms) * 1000000n; while (process.hrtime.bigint() < end); };
let n = 0;
const iv = setInterval(() => {
  n += 1;
  log(`interval ${n}`);
  if (n === 1) {
    setTimeout(() => log('timeout A'), 150);
    busy(200);
  } else if (n === 2) {
    setTimeout(() => log('timeout B'), 50);
  } else {
    clearInterval(iv);
  }
}, 100);
