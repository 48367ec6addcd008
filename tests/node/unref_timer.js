// An unref'd timer does not keep the loop alive, but still fires while something else does.
const log = (s) => console.log(s);
setTimeout(() => log('unref timer 10'), 10).unref();
setTimeout(() => log('timer 40'), 40);
setTimeout(() => log('unref timer 1000'), 1000).unref();
process.on('exit', () => log('exit'));
