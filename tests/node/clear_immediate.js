// clearImmediate: one cleared before the check phase, one cleared by an earlier immediate of
// the same check phase; neither runs.
const log = (s) => console.log(s);
setTimeout(() => {
  log('timer');
  let i3;
  setImmediate(() => {
    log('immediate 1 clears 3');
    clearImmediate(i3);
  });
  const i2 = setImmediate(() => log('immediate 2'));
  i3 = setImmediate(() => log('immediate 3'));
  setImmediate(() => log('immediate 4'));
  const i5 = setImmediate(() => log('immediate 5'));
  clearImmediate(i5);
  void i2;
}, 10);
