// Immediates set during the check phase wait for the next iteration: I3 (set by I1) runs
// after I2 and after the timers phase of the next iteration (T is due by then, because I1
// runs for 5 ms).
const net = require('net');
const log = (s) => console.log(s);
const busy = (ms) => { const end = process.hrtime.bigint() + BigInt(ms) * 1000000n; while (process.hrtime.bigint() < end); };
const server = net.createServer((sock) => {
  sock.end('x');
  server.close();
});
server.listen(0, '127.0.0.1', () => {
  const client = net.connect(server.address().port, '127.0.0.1');
  client.once('data', () => {
    log('io');
    client.destroy();
    setTimeout(() => log('timeout T'), 0);
    setImmediate(() => {
      log('immediate 1');
      setImmediate(() => log('immediate 3 (set in 1)'));
      busy(5);
    });
    setImmediate(() => log('immediate 2'));
  });
});
