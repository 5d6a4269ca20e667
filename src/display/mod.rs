//! Rich notebook output: HTML tables for allocations, proxy scores and polars frames, and the
//! evcxr wire format. Every renderer is a pure `to_html()` (or `to_text()`) that tests check; the
//! `evcxr_display()` methods only print what those return.

mod allocation;
pub mod dataframe;
pub mod html;

pub use dataframe::{format_value, frame_table, DataFrameDisplay, Table};
pub use html::{emit_evcxr, escape, evcxr_blocks, Align, HtmlTable, TableCell};
