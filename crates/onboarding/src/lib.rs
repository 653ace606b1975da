//! Getting a terminal (R19, issue 11): a merchant (or a channel partner on its behalf) applies
//! online; every field is checked as typed and again on submit ([`validate`]); the automatic
//! checks score the application ([`checks`]); a low score is approved at once, the rest wait
//! for two operators (maker–checker); approval allocates the merchant id and terminal ids and
//! creates the merchant, its terminals with their master keys, its administrator and an
//! invitation ([`service`]); each terminal is then activated with a one-time code
//! ([`terminals`]) and receives its parameters and its master key under a transport key.
//!
//! ```
//! use onboarding::validate;
//! assert!(validate::credit_code("91350100M000100Y43").is_ok());
//! assert_eq!(validate::resident_id("110105194912310021").unwrap_err().code, "id-check");
//! ```

pub mod application;
pub mod checks;
pub mod documents;
pub mod follow;
pub mod http;
pub mod limits;
pub mod mcc;
pub mod parameters;
pub mod service;
pub mod terminals;
pub mod validate;
