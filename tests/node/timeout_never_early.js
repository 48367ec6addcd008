// A timeout never fires early: elapsed time since setTimeout >= the delay.
// Node measures deadlines on libuv's millisecond clock (uv_now, truncated), so against a
// sub-millisecond clock a Node timer may fire up to 1 ms early; the script checks against
// delay - 1 ms for that reason. Our runtime is held to the exact delay.
const log = (s) => console.log(s);
for (const ms of [1, 7, 30]) {
  const start = process.hrtime.bigint();
  setTimeout(() => {
    const elapsed = Number(process.hrtime.bigint() - start) / 1e6;
    log(`timeout ${ms} ms ${elapsed >= ms - 1 ? 'not early' : `EARLY (${elapsed} ms)`}`);
  }, ms);
}
