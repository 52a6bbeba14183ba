//! The helpers that Rappel's integration tests share, in one place instead of a copy per crate:
//! a loopback SMTP server (`smtp`), a minimal HTTP/1.1 client (`http`), the list of scenario files
//! (`scenarios`), the signed webhook requests handed to an independent verifier (`signed`), the engine fixture (`engine`: an engine on a fresh store and a simulated clock,
//! throw-away PostgreSQL databases) and the HTTP test app (`app`: the real router served on
//! `127.0.0.1:0`). A dev-dependency only (`publish = false`; `crates/rappel/tests/tidy.rs` checks
//! that no crate ships with it).
//!
//! **Layering.** This crate sits above the crates whose tests use it, and Cargo allows that
//! dev-dependency cycle, but only one way is sound. An integration test (`tests/*.rs`) links the
//! crate's ordinary library, the very one this crate links, so the types match. A `#[cfg(test)]`
//! module inside a crate's `src/` is a second compilation of that crate: an `Engine` made here
//! would not be its `Engine`. So these helpers serve `tests/` folders only, never unit tests.
//!
//! Each helper also lives at the lowest layer that needs it, behind a feature, so that a crate's
//! tests build only the layers beneath them: without features the crate depends on nothing of
//! Rappel's (the SMTP server, the HTTP client and the scenario list, for the channels' tests and
//! the binary's); `engine` adds the engine fixture (store, channels, engine); `server` adds the
//! HTTP test app (and the server). A workspace build unifies the features, which costs nothing:
//! every layer is built then anyway.
//!
//! The server's tests wrap `app::TestApp` (feature `server`) in a type of their own (`tests/common/mod.rs`)
//! because each test file adds an `impl TestApp` block with the requests it makes, and an
//! inherent impl must live in the crate that defines the type.

#[cfg(feature = "server")]
pub mod app;
#[cfg(feature = "engine")]
pub mod engine;
pub mod http;
pub mod scenarios;
pub mod signed;
pub mod smtp;
