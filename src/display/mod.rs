//! Rich notebook output: HTML tables for allocations, proxy scores and polars frames, and the
//! evcxr wire format; plain-text tables that fit a terminal ([`text_table`]). Every renderer is
//! a pure `to_html()` (or `to_text()`) that tests check; the `evcxr_display()` methods only print
//! what those return.

mod allocation;
pub mod dataframe;
pub mod html;
pub mod text_table;

pub use dataframe::{format_value, frame_table, DataFrameDisplay, Table};
pub use html::{emit_evcxr, escape, evcxr_blocks, Align, HtmlTable, TableCell};
pub use text_table::{RenderedTable, TextColumn, TextTable};
