//! Bench stub.
mod common;
fn main() {}
