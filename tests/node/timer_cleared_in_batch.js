// A timer cleared by an earlier callback of the same batch never runs; an interval cleared
// from its own callback runs no more.
const log = (s) => console.log(s);
let b;
setTimeout(() => {
  log('timer A clears B');
  clearTimeout(b);
}, 20);
b = setTimeout(() => log('timer B'), 20);
setTimeout(() => log('timer C'), 20);
let n = 0;
const iv = setInterval(() => {
  n += 1;
  log(`interval ${n}`);
  if (n === 2) clearInterval(iv);
}, 30);
