//! Reading columns of the polars frames the tracker returns. MLflow stores params and tags as
//! strings, so numeric reads parse strings too.

use crate::{Error, Result};
use polars::prelude::{AnyValue, DataFrame, DataType};

fn column<'a>(df: &'a DataFrame, name: &str) -> Result<&'a polars::prelude::Column> {
    df.column(name).map_err(|_| {
        let names: Vec<String> = df
            .get_column_names()
            .iter()
            .map(|n| n.to_string())
            .collect();
        Error::Plot(format!(
            "the frame has no column `{name}` (columns: {})",
            names.join(", ")
        ))
    })
}

/// Column `name` as optional strings (numbers are formatted).
pub(crate) fn strings(df: &DataFrame, name: &str) -> Result<Vec<Option<String>>> {
    let col = column(df, name)?.cast(&DataType::String)?;
    (0..col.len())
        .map(|i| {
            Ok(match col.get(i)? {
                AnyValue::Null => None,
                AnyValue::String(s) => Some(s.to_string()),
                AnyValue::StringOwned(s) => Some(s.to_string()),
                other => Some(other.to_string()),
            })
        })
        .collect()
}

/// Column `name` as optional floats; string values are parsed (empty strings are null).
pub(crate) fn floats(df: &DataFrame, name: &str) -> Result<Vec<Option<f64>>> {
    let col = column(df, name)?;
    if col.dtype() == &DataType::String {
        return strings(df, name)?
            .into_iter()
            .enumerate()
            .map(|(row, v)| match v.as_deref().map(str::trim) {
                None | Some("") => Ok(None),
                Some(s) => s.parse::<f64>().map(Some).map_err(|_| {
                    Error::Plot(format!("column `{name}`, row {row}: `{s}` is not a number"))
                }),
            })
            .collect();
    }
    let col = col.cast(&DataType::Float64).map_err(|e| {
        Error::Plot(format!(
            "column `{name}` ({}) is not numeric: {e}",
            col.dtype()
        ))
    })?;
    (0..col.len())
        .map(|i| {
            Ok(match col.get(i)? {
                AnyValue::Float64(v) => Some(v),
                AnyValue::Null => None,
                other => other.extract::<f64>(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars::prelude::{Column, NamedFrom, Series};

    #[test]
    fn columns_read_as_strings_and_floats() {
        let df = DataFrame::new_infer_height(vec![
            Column::from(Series::new("params.r".into(), &["8", "16", ""])),
            Column::from(Series::new(
                "metrics.acc".into(),
                &[Some(0.5), None, Some(0.7)],
            )),
            Column::from(Series::new("bad".into(), &["x", "1", "2"])),
        ])
        .unwrap();
        assert_eq!(
            floats(&df, "params.r").unwrap(),
            [Some(8.0), Some(16.0), None]
        );
        assert_eq!(
            floats(&df, "metrics.acc").unwrap(),
            [Some(0.5), None, Some(0.7)]
        );
        assert_eq!(
            strings(&df, "metrics.acc").unwrap()[0].as_deref(),
            Some("0.5")
        );
        let err = floats(&df, "bad").unwrap_err().to_string();
        assert!(err.contains("`bad`, row 0"), "{err}");
        let err = floats(&df, "nope").unwrap_err().to_string();
        assert!(err.contains("metrics.acc"), "{err}");
    }
}
