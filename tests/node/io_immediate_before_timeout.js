// An immediate set inside an I/O callback always runs before a zero-delay timer set there:
// the check phase follows the poll phase, the timers phase comes only in the next iteration.
const net = require('net');
const log = (s) => console.log(s);
const server = net.createServer((sock) => {
  sock.end('x');
  server.close();
});
server.listen(0, '127.0.0.1', () => {
  const client = net.connect(server.address().port, '127.0.0.1');
  client.once('data', () => {
    log('io');
    setTimeout(() => log('timeout'), 0);
    setImmediate(() => log('immediate'));
    client.destroy();
  });
});
