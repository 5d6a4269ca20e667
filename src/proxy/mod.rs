//! Zero-cost proxies: score every adapter slot from a few forward/backward passes.

pub mod scores;

pub use scores::Scores;
