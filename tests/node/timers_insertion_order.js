// Equal-delay timers fire in insertion order; a longer delay set in between waits.
const log = (s) => console.log(s);
setTimeout(() => log('timer A'), 20);
setTimeout(() => log('timer X'), 60);
setTimeout(() => log('timer B'), 20);
setTimeout(() => log('timer C'), 20);
setTimeout(() => log('timer D'), 20);
