//! Parsed filters and orderings as SQL over MLflow's tables, values as bound parameters.

use super::{attribute, Comparison, Entity, Literal, Op, OrderBy};
use rusqlite::types::Value as SqlValue;

/// A LIKE pattern (`%`, `_`) as a case-sensitive GLOB pattern.
pub(super) fn like_to_glob(p: &str) -> String {
    let mut g = String::with_capacity(p.len());
    for c in p.chars() {
        match c {
            '%' => g.push('*'),
            '_' => g.push('?'),
            '*' => g.push_str("[*]"),
            '?' => g.push_str("[?]"),
            '[' => g.push_str("[[]"),
            c => g.push(c),
        }
    }
    g
}

/// `col <op> value` with SQL parameters appended to `args`.
fn value_sql(col: &str, op: Op, value: &Literal, args: &mut Vec<SqlValue>) -> String {
    match (op, value) {
        (Op::Like, Literal::Str(s)) => {
            args.push(SqlValue::Text(like_to_glob(s)));
            format!("{col} GLOB ?")
        }
        (Op::ILike, Literal::Str(s)) => {
            args.push(SqlValue::Text(s.to_lowercase()));
            format!("LOWER({col}) LIKE ?")
        }
        (Op::In | Op::NotIn, Literal::List(items)) => {
            let marks = vec!["?"; items.len()].join(", ");
            args.extend(items.iter().map(|s| SqlValue::Text(s.clone())));
            let not = if op == Op::NotIn { "NOT " } else { "" };
            format!("{col} {not}IN ({marks})")
        }
        (_, Literal::Number(n)) => {
            args.push(SqlValue::Real(*n));
            format!("{col} {} ?", op.as_str())
        }
        (_, Literal::Str(s)) => {
            args.push(SqlValue::Text(s.clone()));
            format!("{col} {} ?", op.as_str())
        }
        (_, Literal::List(_)) => unreachable!("lists only with IN"),
    }
}

/// SQL condition on table `runs` for one comparison.
pub fn comparison_sql(c: &Comparison, args: &mut Vec<SqlValue>) -> String {
    let sub = |table: &str, extra: &str, args: &mut Vec<SqlValue>| {
        args.push(SqlValue::Text(c.key.clone()));
        let cond = value_sql("value", c.op, &c.value, args);
        format!(
            "runs.run_uuid IN (SELECT run_uuid FROM {table} WHERE \"key\" = ?{extra} AND {cond})"
        )
    };
    match c.entity {
        Entity::Metric => sub("latest_metrics", " AND is_nan = 0", args),
        Entity::Param => sub("params", "", args),
        Entity::Tag => sub("tags", "", args),
        Entity::Attribute => {
            let (_, col, _) = attribute(&c.key).expect("checked at parse");
            value_sql(&format!("runs.{col}"), c.op, &c.value, args)
        }
    }
}

/// SQL condition for a whole filter (`1` when empty).
pub fn filter_sql(filter: &[Comparison], args: &mut Vec<SqlValue>) -> String {
    if filter.is_empty() {
        return "1".into();
    }
    filter
        .iter()
        .map(|c| comparison_sql(c, args))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// SQL `ORDER BY` items (without the keywords) for `order`, then MLflow's default
/// `start_time DESC, run_uuid`.
pub fn order_sql(order: &[OrderBy], args: &mut Vec<SqlValue>) -> String {
    let mut items = Vec::new();
    for o in order {
        let dir = if o.descending { "DESC" } else { "ASC" };
        let expr = match o.entity {
            Entity::Metric => {
                args.push(SqlValue::Text(o.key.clone()));
                "(SELECT CASE WHEN lm.is_nan THEN NULL ELSE lm.value END FROM latest_metrics lm \
                 WHERE lm.run_uuid = runs.run_uuid AND lm.\"key\" = ?)"
                    .to_string()
            }
            Entity::Param | Entity::Tag => {
                let table = if o.entity == Entity::Param {
                    "params"
                } else {
                    "tags"
                };
                args.push(SqlValue::Text(o.key.clone()));
                format!("(SELECT x.value FROM {table} x WHERE x.run_uuid = runs.run_uuid AND x.\"key\" = ?)")
            }
            Entity::Attribute => {
                let (_, col, _) = attribute(&o.key).expect("checked at parse");
                format!("runs.{col}")
            }
        };
        items.push(format!("{expr} {dir} NULLS LAST"));
    }
    items.push("runs.start_time DESC".into());
    items.push("runs.run_uuid ASC".into());
    items.join(", ")
}
