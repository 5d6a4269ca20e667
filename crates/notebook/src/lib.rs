//! heterolora for evcxr notebooks: the whole crate, re-exported from one shared library.
//!
//! A notebook names it under heterolora's own name, so its cells read as the library's docs do:
//!
//! ```text
//! :dep heterolora = { package = "heterolora-notebook", path = "../crates/notebook" }
//! use heterolora::prelude::*;
//! ```

pub use heterolora::*;
