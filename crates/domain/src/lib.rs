//! Rappel's pure core: the domain types, the policy model and its presets, and the planner.
//!
//! ```
//! use rappel_domain::policy::preset;
//! let doctolib = preset("doctolib").unwrap();
//! assert!(doctolib.rules.iter().any(|r| r.id == "reminder_sms_d1"));
//! ```
//!
//! This crate deliberately does no I/O and never reads the clock: every function that depends on
//! time takes `now` as an argument, so the server, `rappel simulate` and the tests all run the
//! very same rules (ARCHITECTURE.md, "Architecture invariants").

pub mod contact;
pub mod event;
pub mod facts;
pub mod gate;
pub mod notification;
pub mod plan;
pub mod policy;
pub mod render;
pub mod reply;
pub mod secret;
pub mod settings;
pub mod sms;
pub mod task;
pub mod template;
