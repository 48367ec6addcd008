// Overdue timers after a long synchronous callback run in deadline order (not insertion
// order), in the batch after the long callback's.
const log = (s) => console.log(s);
const busy = (ms) => { const end = process.hrtime.bigint() + BigInt(ms) * 1000000n; while (process.hrtime.bigint() < end); };
setTimeout(() => {
  log('timer long (10 ms) starts');
  busy(150);
  log('timer long ends');
}, 10);
setTimeout(() => log('timer 80'), 80);
setTimeout(() => log('timer 40'), 40);
setTimeout(() => log('timer 120'), 120);
setTimeout(() => log('timer 60'), 60);
