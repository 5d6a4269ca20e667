//! MLflow's search filter grammar, parsed and turned into SQL.
//!
//! ```text
//! filter     := comparison ( AND comparison )*          -- no OR, as in MLflow
//! comparison := entity '.' key op value
//! entity     := metrics | params | tags | attributes    -- and MLflow's aliases (metric, param,
//!                                                        -- parameter(s), tag, attribute, attr, run)
//! key        := name | `any key` | "any key"
//! metrics          : =  !=  <  <=  >  >=   number
//! params, tags     : =  !=  LIKE  ILIKE  IN (...)  NOT IN (...)   'quoted string'
//! attributes       : run_id, run_name, status, artifact_uri, user_id:
//!                        =  !=  LIKE  ILIKE  IN ('a', 'b')  NOT IN (...)
//!                    start_time, end_time (alias created): =  !=  <  <=  >  >=   epoch ms
//! ```
//! LIKE is case-sensitive (`%` any run, `_` one character), ILIKE is not. A run that lacks the
//! metric, param or tag a comparison names does not match it. NaN metric values match no
//! comparison. Keywords are case-insensitive.
//!
//! `order_by` items: `<entity>.<key> [ASC|DESC]`; runs without the key sort last.

use crate::{Error, Result};
use lex::{is_kw, tokenize, Tok};

mod lex;
mod sql;
pub use sql::{comparison_sql, filter_sql, order_sql};

/// What a comparison looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    Metric,
    Param,
    Tag,
    Attribute,
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Like,
    ILike,
    In,
    NotIn,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Like => "LIKE",
            Op::ILike => "ILIKE",
            Op::In => "IN",
            Op::NotIn => "NOT IN",
        }
    }
    fn numeric(self) -> bool {
        matches!(self, Op::Eq | Op::Ne | Op::Lt | Op::Le | Op::Gt | Op::Ge)
    }
}

/// A literal on the right of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Number(f64),
    Str(String),
    List(Vec<String>),
}

/// One `entity.key op value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub entity: Entity,
    /// For attributes, the canonical attribute name (`run_id`, `start_time`, ...).
    pub key: String,
    pub op: Op,
    pub value: Literal,
}

/// Attributes a filter or order_by may name: (name, column, numeric).
const ATTRIBUTES: &[(&str, &str, bool)] = &[
    ("run_id", "run_uuid", false),
    ("run_name", "name", false),
    ("status", "status", false),
    ("artifact_uri", "artifact_uri", false),
    ("user_id", "user_id", false),
    ("start_time", "start_time", true),
    ("end_time", "end_time", true),
];

fn attribute(key: &str) -> Option<(&'static str, &'static str, bool)> {
    let k = key.to_ascii_lowercase();
    let k = match k.as_str() {
        "run_uuid" | "id" => "run_id",
        "name" => "run_name",
        "created" => "start_time",
        other => other,
    };
    ATTRIBUTES.iter().copied().find(|(n, _, _)| *n == k)
}

fn attribute_names() -> String {
    ATTRIBUTES
        .iter()
        .map(|a| a.0)
        .collect::<Vec<_>>()
        .join(", ")
}

fn entity(prefix: &str, ident: &str) -> Result<Entity> {
    match prefix.to_ascii_lowercase().as_str() {
        "metric" | "metrics" => Ok(Entity::Metric),
        "param" | "params" | "parameter" | "parameters" => Ok(Entity::Param),
        "tag" | "tags" => Ok(Entity::Tag),
        "attribute" | "attributes" | "attr" | "run" => Ok(Entity::Attribute),
        _ => Err(Error::Tracking(format!(
            "unknown filter field `{ident}`: a field is `metrics.<key>`, `params.<key>`, `tags.<key>` or \
             `attributes.<name>` ({})",
            attribute_names()
        ))),
    }
}

/// Parse a filter string; empty means "every run".
pub fn parse(filter: &str) -> Result<Vec<Comparison>> {
    let toks = tokenize(filter)?;
    let mut out = Vec::new();
    let mut i = 0;
    let err = |what: String| Error::Tracking(format!("filter `{filter}`: {what}"));
    while i < toks.len() {
        if !out.is_empty() {
            if is_kw(toks.get(i), "and") {
                i += 1;
            } else if is_kw(toks.get(i), "or") {
                return Err(err("OR is not supported (MLflow's grammar joins comparisons with AND only); run two searches".into()));
            } else {
                return Err(err(format!(
                    "expected AND between comparisons, found {:?}",
                    toks[i].1
                )));
            }
        }
        let (prefix, key) = match toks.get(i) {
            Some((_, Tok::Ident(p, Some(k)))) => (p.clone(), k.clone()),
            Some((_, Tok::Ident(w, None))) => {
                return Err(err(format!(
                    "unknown filter field `{w}`: prefix it, e.g. `metrics.{w}`, `params.{w}`, `tags.{w}` or `attributes.{w}`"
                )))
            }
            Some((_, t)) => return Err(err(format!("expected a field such as metrics.acc, found {t:?}"))),
            None => return Err(err("ends after AND".into())),
        };
        let ident = format!("{prefix}.{key}");
        let ent = entity(&prefix, &ident)?;
        i += 1;
        let op = match toks.get(i) {
            Some((_, Tok::Op(o))) => match *o {
                "=" => Op::Eq,
                "!=" => Op::Ne,
                "<" => Op::Lt,
                "<=" => Op::Le,
                ">" => Op::Gt,
                _ => Op::Ge,
            },
            Some((_, Tok::Ident(w, None))) if w.eq_ignore_ascii_case("like") => Op::Like,
            Some((_, Tok::Ident(w, None))) if w.eq_ignore_ascii_case("ilike") => Op::ILike,
            Some((_, Tok::Ident(w, None))) if w.eq_ignore_ascii_case("in") => Op::In,
            Some((_, Tok::Ident(w, None))) if w.eq_ignore_ascii_case("not") && is_kw(toks.get(i + 1), "in") => {
                i += 1;
                Op::NotIn
            }
            other => {
                return Err(err(format!(
                    "`{ident}` must be followed by a comparison (=, !=, <, <=, >, >=, LIKE, ILIKE, IN, NOT IN), found {:?}",
                    other.map(|t| &t.1)
                )))
            }
        };
        i += 1;
        let value = if matches!(op, Op::In | Op::NotIn) {
            if toks.get(i).map(|t| &t.1) != Some(&Tok::LParen) {
                return Err(err(format!(
                    "`{ident} {}` needs a list such as ('a', 'b')",
                    op.as_str()
                )));
            }
            i += 1;
            let mut items = Vec::new();
            loop {
                match toks.get(i).map(|t| &t.1) {
                    Some(Tok::Str(s)) => items.push(s.clone()),
                    Some(Tok::Num(n)) => items.push(n.to_string()),
                    other => {
                        return Err(err(format!(
                            "expected a quoted string in the IN list of `{ident}`, found {other:?}"
                        )))
                    }
                }
                i += 1;
                match toks.get(i).map(|t| &t.1) {
                    Some(Tok::Comma) => i += 1,
                    Some(Tok::RParen) => {
                        i += 1;
                        break;
                    }
                    other => {
                        return Err(err(format!(
                            "expected `,` or `)` in the IN list of `{ident}`, found {other:?}"
                        )))
                    }
                }
            }
            Literal::List(items)
        } else {
            let v = match toks.get(i).map(|t| &t.1) {
                Some(Tok::Str(s)) => Literal::Str(s.clone()),
                Some(Tok::Num(n)) => Literal::Number(*n),
                other => {
                    return Err(err(format!(
                        "expected a value after `{ident} {}`, found {other:?}",
                        op.as_str()
                    )))
                }
            };
            i += 1;
            v
        };
        out.push(check(ent, key, op, value, &ident, filter)?);
    }
    Ok(out)
}

/// Check the operator and value types against the entity, MLflow's way.
fn check(
    ent: Entity,
    key: String,
    op: Op,
    value: Literal,
    ident: &str,
    filter: &str,
) -> Result<Comparison> {
    let err = |what: String| Error::Tracking(format!("filter `{filter}`: {what}"));
    match ent {
        Entity::Metric => {
            if !op.numeric() {
                return Err(err(format!(
                    "`{ident}`: metrics compare with =, !=, <, <=, >, >= (not {})",
                    op.as_str()
                )));
            }
            let value = match value {
                Literal::Number(n) => Literal::Number(n),
                // MLflow accepts a quoted number for a metric too.
                Literal::Str(s) => Literal::Number(s.trim().parse().map_err(|_| {
                    err(format!(
                        "`{ident}`: metric values are numbers, `{s}` is not"
                    ))
                })?),
                Literal::List(_) => unreachable!(),
            };
            Ok(Comparison {
                entity: ent,
                key,
                op,
                value,
            })
        }
        Entity::Param | Entity::Tag => {
            let kind = if ent == Entity::Param {
                "params"
            } else {
                "tags"
            };
            if !matches!(
                op,
                Op::Eq | Op::Ne | Op::Like | Op::ILike | Op::In | Op::NotIn
            ) {
                return Err(err(format!(
                    "`{ident}`: {kind} are strings and compare with =, !=, LIKE, ILIKE, IN, NOT IN (not {}); \
                     to compare numbers log them as metrics",
                    op.as_str()
                )));
            }
            if let Literal::Number(n) = value {
                return Err(err(format!(
                    "`{ident}`: {kind} values are strings: quote the value, e.g. {ident} = '{n}'"
                )));
            }
            Ok(Comparison {
                entity: ent,
                key,
                op,
                value,
            })
        }
        Entity::Attribute => {
            let (name, _, numeric) = attribute(&key).ok_or_else(|| {
                err(format!(
                    "unknown filter field `{ident}`: attributes are {}",
                    attribute_names()
                ))
            })?;
            if numeric {
                if !op.numeric() {
                    return Err(err(format!(
                        "`{ident}` is a time (epoch ms): compare with =, !=, <, <=, >, >="
                    )));
                }
                let value = match value {
                    Literal::Number(n) => Literal::Number(n),
                    Literal::Str(s) => Literal::Number(s.trim().parse().map_err(|_| {
                        err(format!(
                            "`{ident}` is a time in epoch milliseconds, `{s}` is not a number"
                        ))
                    })?),
                    Literal::List(_) => unreachable!(),
                };
                Ok(Comparison {
                    entity: ent,
                    key: name.into(),
                    op,
                    value,
                })
            } else {
                if !matches!(
                    op,
                    Op::Eq | Op::Ne | Op::Like | Op::ILike | Op::In | Op::NotIn
                ) {
                    return Err(err(format!(
                        "`{ident}` is a string: compare with =, !=, LIKE, ILIKE, IN, NOT IN"
                    )));
                }
                if let Literal::Number(n) = value {
                    return Err(err(format!(
                        "`{ident}` is a string: quote the value, e.g. {ident} = '{n}'"
                    )));
                }
                Ok(Comparison {
                    entity: ent,
                    key: name.into(),
                    op,
                    value,
                })
            }
        }
    }
}

/// One parsed `order_by` item.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderBy {
    pub entity: Entity,
    pub key: String,
    pub descending: bool,
}

/// Parse `metrics.acc DESC`, `attributes.start_time`, ``params.`my key` ASC``.
pub fn parse_order_by(item: &str) -> Result<OrderBy> {
    let toks = tokenize(item)?;
    let err = |what: String| Error::Tracking(format!("order_by `{item}`: {what}"));
    let (prefix, key) = match toks.first().map(|t| &t.1) {
        Some(Tok::Ident(p, Some(k))) => (p.clone(), k.clone()),
        Some(Tok::Ident(w, None)) => {
            return Err(err(format!(
                "unknown field `{w}`: use metrics.{w}, params.{w}, tags.{w} or attributes.{w}"
            )))
        }
        _ => return Err(err("expected a field such as `metrics.acc DESC`".into())),
    };
    let ident = format!("{prefix}.{key}");
    let ent = entity(&prefix, &ident).map_err(|e| err(e.to_string()))?;
    let descending = match toks.get(1).map(|t| &t.1) {
        None => false,
        Some(Tok::Ident(w, None)) if w.eq_ignore_ascii_case("asc") => false,
        Some(Tok::Ident(w, None)) if w.eq_ignore_ascii_case("desc") => true,
        Some(t) => {
            return Err(err(format!(
                "expected ASC or DESC after `{ident}`, found {t:?}"
            )))
        }
    };
    if toks.len() > 2 {
        return Err(err(
            "one field and ASC/DESC per item; give several items for several keys".into(),
        ));
    }
    let key = if ent == Entity::Attribute {
        attribute(&key)
            .ok_or_else(|| {
                err(format!(
                    "unknown attribute `{key}`: attributes are {}",
                    attribute_names()
                ))
            })?
            .0
            .to_string()
    } else {
        key
    };
    Ok(OrderBy {
        entity: ent,
        key,
        descending,
    })
}

#[cfg(test)]
mod tests;
