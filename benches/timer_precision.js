// Node.js contender of `cargo bench --bench timer_precision` (benches/timer_precision.rs runs
// it as `node timer_precision.js SCENARIO N`; the Rust children run the same scenarios).
//
//   interval N   setInterval(10 ms): mean period over N periods, from the setInterval call
//   chain N      a chain of N setTimeout(fn, 0), each set from the previous callback: mean
//                time per link (Node clamps 0 to 1 ms)
//   timeout1 N   N setTimeout(fn, 1), each set from the previous callback: lateness =
//                fire - set - 1 ms (mean, min, max)
//   timeout10 N  the same with 10 ms
//
// Every scenario starts from within a first timer callback (as the Rust children do), so that
// no contender measures from a loop time cached before the loop started.
// Prints one line: `DONE mean=<ms> min=<ms> max=<ms> n=<count>`.
'use strict';

const scenario = process.argv[2] || '';
const n = Number(process.argv[3] || 0);

function done(mean, min, max, count) {
  console.log(
    'DONE mean=' + mean.toFixed(6) + ' min=' + min.toFixed(6) + ' max=' + max.toFixed(6) +
      ' n=' + count,
  );
}

function interval() {
  const start = performance.now();
  let fired = 0;
  const id = setInterval(() => {
    if (++fired === n) {
      clearInterval(id);
      const mean = (performance.now() - start) / n;
      done(mean, mean, mean, n);
    }
  }, 10);
}

function chain() {
  const start = performance.now();
  let links = 0;
  function link() {
    if (++links === n) {
      const mean = (performance.now() - start) / n;
      done(mean, mean, mean, n);
    } else {
      setTimeout(link, 0);
    }
  }
  setTimeout(link, 0);
}

function timeouts(delay) {
  const late = [];
  function arm() {
    const set = performance.now();
    setTimeout(() => {
      late.push(performance.now() - set - delay);
      if (late.length < n) {
        arm();
      } else {
        const mean = late.reduce((a, b) => a + b, 0) / late.length;
        done(mean, Math.min(...late), Math.max(...late), late.length);
      }
    }, delay);
  }
  arm();
}

const scenarios = {
  interval,
  chain,
  timeout1: () => timeouts(1),
  timeout10: () => timeouts(10),
};

if (!(scenario in scenarios) || !(n > 0)) {
  console.error('usage: node timer_precision.js interval|chain|timeout1|timeout10 N');
  process.exit(2);
}
setTimeout(scenarios[scenario], 1);
