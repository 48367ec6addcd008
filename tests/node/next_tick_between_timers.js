// process.nextTick runs after each timer callback, before the next timer of the same batch
// (Node >= 11). A tick from the main module runs before any timer.
const log = (s) => console.log(s);
setTimeout(() => {
  log('timer A');
  process.nextTick(() => {
    log('tick A');
    process.nextTick(() => log('tick A (nested)'));
  });
}, 20);
setTimeout(() => {
  log('timer B');
  process.nextTick(() => log('tick B'));
}, 20);
process.nextTick(() => log('tick main'));
