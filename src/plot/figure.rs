//! [`Figure`]: a rendered chart. Holds the SVG and the chart itself, so that a PNG can be drawn
//! from the same code with the bitmap backend (pixel-exact size, embedded font, no SVG rasteriser).

use super::font::ensure_fonts;
use super::{plot_err, Plot};
use crate::{Error, Result};
use plotters::prelude::{BitMapBackend, IntoDrawingArea, SVGBackend, WHITE};
use std::fmt;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

// Object-safe face of `Plot` (whose `draw` is generic over the backend).
trait Render: Send + Sync {
    fn render_svg(&self) -> Result<String>;
    fn render_png(&self, path: &Path) -> Result<()>;
    fn size(&self) -> (u32, u32);
}

impl<P: Plot + Send + Sync> Render for P {
    fn render_svg(&self) -> Result<String> {
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, Plot::size(self)).into_drawing_area();
            root.fill(&WHITE).map_err(plot_err)?;
            self.draw(&root)?;
            root.present().map_err(plot_err)?;
        }
        Ok(svg)
    }

    fn render_png(&self, path: &Path) -> Result<()> {
        let root = BitMapBackend::new(path, Plot::size(self)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        self.draw(&root)?;
        root.present()
            .map_err(|e| Error::Plot(format!("writing {}: {e}", path.display())))
    }

    fn size(&self) -> (u32, u32) {
        Plot::size(self)
    }
}

/// A rendered chart: SVG text plus what is needed to draw it again as PNG.
///
/// In evcxr a `Figure` as a cell's last value shows inline as SVG.
#[derive(Clone)]
pub struct Figure {
    svg: String,
    plot: Arc<dyn Render>,
}

impl Figure {
    /// Render `plot` to SVG now (so that errors show at once) and keep it for PNG output.
    pub fn new<P: Plot + Send + Sync + 'static>(plot: P) -> Result<Figure> {
        ensure_fonts()?;
        let (w, h) = Plot::size(&plot);
        if w < 100 || h < 100 || w > 10_000 || h > 10_000 {
            return Err(Error::invalid(
                "figure size",
                format!("{w}x{h}"),
                "each side between 100 and 10000 pixels",
            ));
        }
        let svg = plot.render_svg()?;
        Ok(Figure {
            svg,
            plot: Arc::new(plot),
        })
    }

    /// The SVG document.
    pub fn to_svg(&self) -> &str {
        &self.svg
    }

    /// Width and height in pixels (of both the SVG and the PNG).
    pub fn size(&self) -> (u32, u32) {
        self.plot.size()
    }

    /// Write the SVG to `path`.
    pub fn save_svg(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        std::fs::write(path, &self.svg).map_err(|e| Error::io(path, e))
    }

    /// Draw the chart again with the bitmap backend and write a PNG of the same size to `path`.
    pub fn save_png(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.is_dir() {
                return Err(Error::io(
                    path,
                    std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        format!("directory {} does not exist", dir.display()),
                    ),
                ));
            }
        }
        self.plot.render_png(path)
    }

    /// The evcxr display block, as written by [`Figure::evcxr_display`].
    pub fn to_evcxr(&self) -> String {
        format!(
            "EVCXR_BEGIN_CONTENT image/svg+xml\n{}\nEVCXR_END_CONTENT\n",
            self.svg.trim_end()
        )
    }

    /// Show the figure inline in evcxr (one write, so output from threads cannot interleave).
    pub fn evcxr_display(&self) {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(self.to_evcxr().as_bytes());
        let _ = out.flush();
    }
}

impl fmt::Debug for Figure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (w, h) = self.size();
        write!(f, "Figure({w}x{h}, {} bytes of SVG)", self.svg.len())
    }
}
