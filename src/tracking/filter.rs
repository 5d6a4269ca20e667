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
use rusqlite::types::Value as SqlValue;

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

// ---- tokens ------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// `prefix.key` (key possibly quoted) or a bare word/keyword.
    Ident(String, Option<String>),
    Str(String),
    Num(f64),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
}

fn tokenize(s: &str) -> Result<Vec<(usize, Tok)>> {
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    let err = |pos: usize, what: &str| {
        Error::Tracking(format!("filter `{s}`: {what} at character {}", pos + 1))
    };
    let read_quoted = |i: &mut usize, q: char| -> Result<String> {
        let start = *i;
        *i += 1;
        let mut v = String::new();
        loop {
            match chars.get(*i) {
                None => return Err(err(start, &format!("unterminated {q}quoted{q} text"))),
                Some(&c) if c == q => {
                    if chars.get(*i + 1) == Some(&q) {
                        v.push(q);
                        *i += 2;
                    } else {
                        *i += 1;
                        return Ok(v);
                    }
                }
                Some(&c) => {
                    v.push(c);
                    *i += 1;
                }
            }
        }
    };
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        if c.is_whitespace() {
            i += 1;
        } else if c == '\'' || c == '"' {
            out.push((start, Tok::Str(read_quoted(&mut i, c)?)));
        } else if c == '`' {
            // A whole identifier in backticks: `metrics.my key` is not MLflow's form; a key alone is.
            return Err(err(
                i,
                "backticks must follow a prefix, as in metrics.`my key`",
            ));
        } else if c.is_ascii_digit()
            || ((c == '-' || c == '+' || c == '.')
                && chars
                    .get(i + 1)
                    .is_some_and(|d| d.is_ascii_digit() || *d == '.'))
        {
            let mut j = i + 1;
            while j < chars.len() {
                let d = chars[j];
                let exponent_sign = (d == '-' || d == '+') && matches!(chars[j - 1], 'e' | 'E');
                if d.is_ascii_digit() || matches!(d, '.' | 'e' | 'E') || exponent_sign {
                    j += 1;
                } else {
                    break;
                }
            }
            let text: String = chars[i..j].iter().collect();
            let v: f64 = text
                .parse()
                .map_err(|_| err(i, &format!("`{text}` is not a number")))?;
            out.push((start, Tok::Num(v)));
            i = j;
        } else if c.is_alphabetic() || c == '_' {
            let mut j = i;
            while j < chars.len()
                && chars[j] != '.'
                && (chars[j].is_alphanumeric() || chars[j] == '_')
            {
                j += 1;
            }
            let word: String = chars[i..j].iter().collect();
            if chars.get(j) == Some(&'.') {
                j += 1;
                let key = match chars.get(j) {
                    Some(&q) if q == '`' || q == '"' => read_quoted(&mut j, q)?,
                    _ => {
                        let k0 = j;
                        while j < chars.len()
                            && (chars[j].is_alphanumeric()
                                || matches!(chars[j], '_' | '.' | '-' | '/' | ':'))
                        {
                            j += 1;
                        }
                        if j == k0 {
                            return Err(err(k0, &format!("`{word}.` is followed by no key")));
                        }
                        chars[k0..j].iter().collect()
                    }
                };
                out.push((start, Tok::Ident(word, Some(key))));
            } else {
                out.push((start, Tok::Ident(word, None)));
            }
            i = j;
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let (tok, n) = match two.as_str() {
                "!=" | "<>" => (Tok::Op("!="), 2),
                "<=" => (Tok::Op("<="), 2),
                ">=" => (Tok::Op(">="), 2),
                "==" => (Tok::Op("="), 2),
                _ => match c {
                    '=' => (Tok::Op("="), 1),
                    '<' => (Tok::Op("<"), 1),
                    '>' => (Tok::Op(">"), 1),
                    '(' => (Tok::LParen, 1),
                    ')' => (Tok::RParen, 1),
                    ',' => (Tok::Comma, 1),
                    _ => return Err(err(i, &format!("unexpected `{c}`"))),
                },
            };
            out.push((start, tok));
            i += n;
        }
    }
    Ok(out)
}

fn is_kw(t: Option<&(usize, Tok)>, kw: &str) -> bool {
    matches!(t, Some((_, Tok::Ident(w, None))) if w.eq_ignore_ascii_case(kw))
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

/// A LIKE pattern (`%`, `_`) as a case-sensitive GLOB pattern.
fn like_to_glob(p: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mlflow_filters() {
        let f = parse(
            "metrics.acc > 0.8 and params.rank = '16' AND tags.`mlflow.runName` LIKE 'lora%'",
        )
        .unwrap();
        assert_eq!(f.len(), 3);
        assert_eq!(
            f[0],
            Comparison {
                entity: Entity::Metric,
                key: "acc".into(),
                op: Op::Gt,
                value: Literal::Number(0.8)
            }
        );
        assert_eq!(f[1].entity, Entity::Param);
        assert_eq!(f[2].key, "mlflow.runName");
        assert_eq!(f[2].op, Op::Like);
        let f = parse("attributes.status IN ('FINISHED', 'FAILED') and run.start_time >= 17 and metric.\"eval/acc\" <= -1e-3").unwrap();
        assert_eq!(
            f[0].value,
            Literal::List(vec!["FINISHED".into(), "FAILED".into()])
        );
        assert_eq!(f[1].key, "start_time");
        assert_eq!(f[2].key, "eval/acc");
        assert_eq!(f[2].value, Literal::Number(-1e-3));
        assert_eq!(
            parse("attributes.run_name NOT IN ('a')").unwrap()[0].op,
            Op::NotIn
        );
        assert_eq!(
            parse("params.s = 'it''s'").unwrap()[0].value,
            Literal::Str("it's".into())
        );
        assert_eq!(parse("metrics.eval/acc != 1").unwrap()[0].key, "eval/acc");
        assert!(parse("   ").unwrap().is_empty());
    }

    #[test]
    fn rejects_bad_filters_with_clear_messages() {
        let cases = [
            ("acc > 0.8", "unknown filter field `acc`"),
            ("foo.acc > 0.8", "unknown filter field `foo.acc`"),
            (
                "attributes.colour = 'red'",
                "unknown filter field `attributes.colour`",
            ),
            (
                "metrics.acc > 0.8 OR metrics.acc < 0.1",
                "OR is not supported",
            ),
            ("metrics.acc LIKE '0.8'", "metrics compare with"),
            ("params.rank > '8'", "params are strings"),
            ("params.rank = 16", "quote the value"),
            ("metrics.acc > 'high'", "not"),
            ("metrics.acc >", "expected a value"),
            ("params.x = 'open", "unterminated"),
            ("metrics.acc > 1 metrics.b < 2", "expected AND"),
            ("attributes.start_time LIKE 'x'", "epoch ms"),
        ];
        for (f, want) in cases {
            let e = parse(f).unwrap_err().to_string();
            assert!(e.contains(want), "filter {f:?}: error {e:?} lacks {want:?}");
        }
    }

    #[test]
    fn builds_sql_with_parameters_in_order() {
        let f = parse("metrics.acc >= 0.5 and params.lr LIKE '1e-%' and attributes.run_id = 'ab'")
            .unwrap();
        let mut args = Vec::new();
        let sql = filter_sql(&f, &mut args);
        assert_eq!(sql.matches('?').count(), args.len());
        assert!(
            sql.contains("is_nan = 0") && sql.contains("GLOB") && sql.contains("runs.run_uuid = ?")
        );
        assert_eq!(args[3], SqlValue::Text("1e-*".into()));
        assert_eq!(like_to_glob("a*b?[c]_%"), "a[*]b[?][[]c]?*");
    }

    #[test]
    fn parses_order_by() {
        assert_eq!(
            parse_order_by("metrics.acc DESC").unwrap(),
            OrderBy {
                entity: Entity::Metric,
                key: "acc".into(),
                descending: true
            }
        );
        assert_eq!(
            parse_order_by("attributes.created").unwrap().key,
            "start_time"
        );
        assert!(!parse_order_by("params.`a b` asc").unwrap().descending);
        assert!(parse_order_by("bogus")
            .unwrap_err()
            .to_string()
            .contains("unknown field"));
        assert!(parse_order_by("metrics.acc sideways").is_err());
        let mut args = Vec::new();
        let sql = order_sql(&[parse_order_by("metrics.acc DESC").unwrap()], &mut args);
        assert!(sql.starts_with("(SELECT") && sql.contains("DESC NULLS LAST") && args.len() == 1);
    }
}
