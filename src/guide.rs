//! # Writing a backend
//!
//! TODO
