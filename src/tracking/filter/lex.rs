//! The filter tokenizer: identifiers with their (possibly quoted) keys, strings, numbers,
//! operators.

use crate::{Error, Result};

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    /// `prefix.key` (key possibly quoted) or a bare word/keyword.
    Ident(String, Option<String>),
    Str(String),
    Num(f64),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
}

pub(super) fn tokenize(s: &str) -> Result<Vec<(usize, Tok)>> {
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

pub(super) fn is_kw(t: Option<&(usize, Tok)>, kw: &str) -> bool {
    matches!(t, Some((_, Tok::Ident(w, None))) if w.eq_ignore_ascii_case(kw))
}
