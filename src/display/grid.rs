//! A plain-text grid: a header, one row per layer, a footer; the first column is the label. The
//! text form of allocations, proxy scores and re-allocation logs.

/// A rendered grid: header, one row per layer, one footer row; the first column is the label.
pub struct Grid {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub footer: Vec<String>,
}

impl Grid {
    pub fn text(&self, title: &str) -> String {
        let ncol = self.header.len();
        let mut w = vec![0; ncol];
        for row in std::iter::once(&self.header)
            .chain(&self.rows)
            .chain(std::iter::once(&self.footer))
        {
            for (i, c) in row.iter().enumerate() {
                w[i] = w[i].max(c.chars().count());
            }
        }
        let line = |row: &[String]| -> String {
            let cells: Vec<String> = row
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    if i == 0 {
                        format!("{c:<width$}", width = w[0])
                    } else {
                        format!("{c:>width$}", width = w[i])
                    }
                })
                .collect();
            cells.join("  ").trim_end().to_string()
        };
        let mut out = String::new();
        out.push_str(title);
        out.push('\n');
        out.push_str(&line(&self.header[..]));
        out.push('\n');
        for r in &self.rows {
            out.push_str(&line(&r[..]));
            out.push('\n');
        }
        out.push_str(&line(&self.footer[..]));
        out
    }
}
