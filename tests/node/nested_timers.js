// Nested timers: a timer set inside a timer callback is scheduled from that callback's time.
const log = (s) => console.log(s);
setTimeout(() => {
  log('timer outer 10');
  setTimeout(() => {
    log('timer inner 10');
    setTimeout(() => log('timer innermost 0'), 0);
  }, 10);
}, 10);
setTimeout(() => log('timer sibling 200'), 200);
