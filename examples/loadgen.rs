//! Load generator for echo servers: C connections ping-ponging S-byte messages for D seconds,
//! printing one machine-readable line:
//!
//! ```text
//! loadgen conns=C size=S secs=D rtt_per_sec=... p50_us=... p99_us=... errors=0
//! ```
//!
//! `cargo run --release --example loadgen -- --addr 127.0.0.1:PORT --conns 64 --size 64 --secs 5 [--warmup 1]`
//!
//! The client logic lives in `benches/common/loadgen.rs`, shared with the echo and idle-scale
//! benches so that the example and the benches measure the same way.

#[path = "../benches/common/loadgen.rs"]
#[allow(dead_code)]
mod loadgen;

fn main() {
    env_logger::init();
    std::process::exit(loadgen::main_with(std::env::args().skip(1)));
}
