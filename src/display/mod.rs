//! Rich notebook output: HTML tables for allocations, proxy scores and polars frames, and the
//! evcxr wire format; plain-text tables that fit a terminal ([`text_table`]). Every renderer is
//! a pure `to_html()` (or `to_text()`) that tests check; the `evcxr_display()` methods only print
//! what those return.

pub mod dataframe;
pub mod grid;
pub mod html;
pub mod palette;
pub mod text_table;

pub use dataframe::{format_value, frame_table, DataFrameDisplay, Table};
pub use html::{emit_evcxr, escape, evcxr_blocks, Align, HtmlTable, TableCell};
pub use text_table::{RenderedTable, TextColumn, TextTable};

/// `1234567` -> `1,234,567`.
pub fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separates() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(585_728), "585,728");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
