//! Colour-blind-friendly colours: the Okabe-Ito palette for categories, viridis and a blue ramp for
//! values, and the text colour that reads on a given fill.

use plotters::style::RGBColor;

/// Okabe-Ito colours in the order used for series (yellow last: it is faint on white).
pub const OKABE_ITO: [RGBColor; 8] = [
    RGBColor(0, 114, 178),   // blue
    RGBColor(230, 159, 0),   // orange
    RGBColor(0, 158, 115),   // bluish green
    RGBColor(213, 94, 0),    // vermillion
    RGBColor(204, 121, 167), // reddish purple
    RGBColor(86, 180, 233),  // sky blue
    RGBColor(0, 0, 0),       // black
    RGBColor(240, 228, 66),  // yellow
];

/// Grey for cells that are candidates but off.
pub const OFF: RGBColor = RGBColor(238, 238, 238);
/// Background of total (margin) cells.
pub const MARGIN: RGBColor = RGBColor(248, 248, 248);
/// Light grid lines and borders.
pub const GRID: RGBColor = RGBColor(200, 200, 200);
/// Dark grey for secondary text.
pub const DIM: RGBColor = RGBColor(90, 90, 90);

/// The `i`-th series colour (cycles after 8).
pub fn series(i: usize) -> RGBColor {
    OKABE_ITO[i % OKABE_ITO.len()]
}

fn ramp(stops: &[(u8, u8, u8)], t: f64) -> RGBColor {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let x = t * (stops.len() - 1) as f64;
    let i = (x.floor() as usize).min(stops.len() - 2);
    let f = x - i as f64;
    let (a, b) = (stops[i], stops[i + 1]);
    let mix = |p: u8, q: u8| (p as f64 + (q as f64 - p as f64) * f).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Viridis at `t` in [0, 1] (perceptually uniform, colour-blind safe).
pub fn viridis(t: f64) -> RGBColor {
    const STOPS: [(u8, u8, u8); 9] = [
        (68, 1, 84),
        (71, 44, 122),
        (59, 81, 139),
        (44, 113, 142),
        (33, 144, 141),
        (39, 173, 129),
        (92, 200, 99),
        (170, 220, 50),
        (253, 231, 37),
    ];
    ramp(&STOPS, t)
}

/// A light-to-dark blue ramp at `t` in [0, 1], for ranks (more rank reads as more ink).
pub fn blues(t: f64) -> RGBColor {
    const STOPS: [(u8, u8, u8); 5] = [
        (198, 219, 239),
        (158, 202, 225),
        (66, 146, 198),
        (8, 81, 156),
        (8, 48, 107),
    ];
    ramp(&STOPS, t)
}

/// Black or white, whichever reads better on `fill`.
pub fn text_on(fill: RGBColor) -> RGBColor {
    let l = 0.2126 * fill.0 as f64 + 0.7152 * fill.1 as f64 + 0.0722 * fill.2 as f64;
    if l < 140.0 {
        RGBColor(255, 255, 255)
    } else {
        RGBColor(0, 0, 0)
    }
}

/// `#rrggbb`.
pub fn hex(c: RGBColor) -> String {
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ramps_hit_their_ends_and_text_contrasts() {
        assert_eq!(viridis(0.0), RGBColor(68, 1, 84));
        assert_eq!(viridis(1.0), RGBColor(253, 231, 37));
        assert_eq!(viridis(2.0), viridis(1.0));
        assert_eq!(viridis(f64::NAN), viridis(0.0));
        assert_eq!(text_on(viridis(0.0)), RGBColor(255, 255, 255));
        assert_eq!(text_on(viridis(1.0)), RGBColor(0, 0, 0));
        assert_eq!(hex(series(0)), "#0072b2");
        assert_eq!(series(8), series(0));
    }
}
