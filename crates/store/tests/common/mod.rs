//! The shared test backends live in `store::testing`.
pub use store::testing::*;
