// Close callbacks run after immediates: closing a socket in an I/O callback queues its close
// callback for the close phase, which follows the check phase of the same iteration.
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
    client.on('close', () => log('close'));
    client.destroy();
    setImmediate(() => log('immediate'));
    process.nextTick(() => log('tick'));
  });
});
