// The next-tick queue drains before the check phase and between immediates (Node >= 11).
const log = (s) => console.log(s);
setTimeout(() => {
  log('timer');
  setImmediate(() => {
    log('immediate 1');
    process.nextTick(() => log('tick (set in immediate 1)'));
  });
  setImmediate(() => log('immediate 2'));
  process.nextTick(() => log('tick (set in timer)'));
}, 10);
