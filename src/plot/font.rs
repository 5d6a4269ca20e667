//! The embedded font. PNG rendering rasterises text itself and SVG layout measures text, so both
//! need a font the program carries: DejaVu Sans, registered once per process under the family name
//! `sans-serif` so that the SVG output names a family every viewer has.

use crate::{Error, Result};
use plotters::style::{register_font, Color, FontStyle, IntoFont, RGBColor, TextStyle};
use std::sync::OnceLock;

/// The family every chart uses; DejaVu Sans is registered under it.
pub const FONT_FAMILY: &str = "sans-serif";

/// Register DejaVu Sans (regular, bold, oblique) with plotters. Idempotent and thread-safe;
/// every chart calls it before drawing, so users never need to.
pub fn ensure_fonts() -> Result<()> {
    static REGISTERED: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            let faces: [(FontStyle, &'static [u8], &str); 4] = [
                (FontStyle::Normal, dejavu::sans::regular(), "regular"),
                (FontStyle::Bold, dejavu::sans::bold(), "bold"),
                (FontStyle::Oblique, dejavu::sans::oblique(), "oblique"),
                (FontStyle::Italic, dejavu::sans::oblique(), "italic"),
            ];
            for (style, bytes, name) in faces {
                register_font(FONT_FAMILY, style, bytes)
                    .map_err(|_| format!("the embedded DejaVu Sans {name} font did not load"))?;
            }
            Ok(())
        })
        .clone()
        .map_err(Error::Plot)
}

/// A text style in the chart font at `size` (plotters units: SVG font-size is size / 1.24).
pub(crate) fn text(size: f64) -> TextStyle<'static> {
    (FONT_FAMILY, size).into_font().into()
}

/// Bold text in the chart font.
pub(crate) fn bold(size: f64) -> TextStyle<'static> {
    (FONT_FAMILY, size, FontStyle::Bold).into_font().into()
}

/// Text in the chart font with a colour.
pub(crate) fn coloured(size: f64, colour: RGBColor) -> TextStyle<'static> {
    let mut style = text(size);
    style.color = colour.to_backend_color();
    style
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fonts_register_once_and_measure_text() {
        ensure_fonts().unwrap();
        ensure_fonts().unwrap();
        let style = text(20.0);
        let ((x0, _), (x1, _)) = style.font.layout_box("heterolora").unwrap();
        assert!(x1 - x0 > 50, "text width {}", x1 - x0);
    }
}
