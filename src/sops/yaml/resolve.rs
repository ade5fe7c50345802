//! go-yaml v3 core-schema resolution of plain scalars.

use crate::sops::gofmt;
use crate::sops::tree::Value;

/// What a plain scalar resolves to (go-yaml v3 `resolve("", s)`).
#[derive(Debug, PartialEq)]
pub(crate) enum Resolved {
    /// A typed value (string, int, float, bool, null, time).
    Value(Value),
    /// An integer in u64 range beyond i64 (sops cannot walk it).
    Uint,
    /// The merge key `<<`.
    Merge,
}

fn parse_go_int(s: &str) -> Option<i128> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if body.is_empty() {
        return None;
    }
    let (radix, digits) =
        if let Some(r) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
            (16, r)
        } else if let Some(r) = body.strip_prefix("0o").or_else(|| body.strip_prefix("0O")) {
            (8, r)
        } else if let Some(r) = body.strip_prefix("0b").or_else(|| body.strip_prefix("0B")) {
            (2, r)
        } else if body.len() > 1 && body.starts_with('0') {
            (8, &body[1..])
        } else {
            (10, body)
        };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let v = i128::from_str_radix(digits, radix).ok()?;
    Some(if neg { -v } else { v })
}

fn yaml_style_float(s: &str) -> bool {
    // ^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$
    let b = s.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'-' | b'+')) {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let st = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - st
    };
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            digits(&mut i);
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'-' | b'+')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// Resolves a plain (unquoted, untagged) scalar like go-yaml v3.
pub(crate) fn resolve_plain(s: &str) -> Resolved {
    let v = match s {
        "" | "~" | "null" | "Null" | "NULL" => Value::Null,
        "true" | "True" | "TRUE" => Value::Bool(true),
        "false" | "False" | "FALSE" => Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => Value::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => Value::Float(f64::NAN),
        "<<" => return Resolved::Merge,
        _ => {
            let c = s.as_bytes()[0];
            if c.is_ascii_digit() || c == b'+' || c == b'-' {
                if let Some(t) = gofmt::yaml_timestamp(s) {
                    return Resolved::Value(Value::Time(t));
                }
                let plain = s.replace('_', "");
                if let Some(i) = parse_go_int(&plain) {
                    if let Ok(i) = i64::try_from(i) {
                        return Resolved::Value(Value::Int(i));
                    }
                    if u64::try_from(i).is_ok() {
                        return Resolved::Uint;
                    }
                }
                if yaml_style_float(&plain)
                    && let Ok(f) = plain.parse::<f64>()
                {
                    return Resolved::Value(Value::Float(f));
                }
                Value::str(s)
            } else if c == b'.' {
                match s.parse::<f64>() {
                    Ok(f) if yaml_style_float(s) => Value::Float(f),
                    _ => Value::str(s),
                }
            } else {
                Value::str(s)
            }
        }
    };
    Resolved::Value(v)
}

/// True when a string, written plain, would read back as the same string (go-yaml's
/// `canUsePlain` check, including the YAML 1.1 booleans and base-60 floats it avoids).
pub(crate) fn plain_is_str(s: &str) -> bool {
    let old_bool = matches!(
        s,
        "y" | "Y"
            | "yes"
            | "Yes"
            | "YES"
            | "on"
            | "On"
            | "ON"
            | "n"
            | "N"
            | "no"
            | "No"
            | "NO"
            | "off"
            | "Off"
            | "OFF"
    );
    if old_bool || is_base60_float(s) {
        return false;
    }
    matches!(resolve_plain(s), Resolved::Value(Value::Str(_)))
}

fn is_base60_float(s: &str) -> bool {
    // ^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$
    let b = s.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'-' | b'+')) {
        i += 1;
    }
    if !b.get(i).is_some_and(|c| c.is_ascii_digit()) {
        return false;
    }
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
        i += 1;
    }
    let mut groups = 0;
    while b.get(i) == Some(&b':') {
        i += 1;
        let st = i;
        while i < b.len() && b[i].is_ascii_digit() && i - st < 2 {
            i += 1;
        }
        let g = &b[st..i];
        if g.is_empty() || (g.len() == 2 && g[0] > b'5') {
            return false;
        }
        groups += 1;
    }
    if groups == 0 {
        return false;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
            i += 1;
        }
    }
    i == b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_schema() {
        assert_eq!(resolve_plain("0x1F"), Resolved::Value(Value::Int(31)));
        assert_eq!(resolve_plain("0o17"), Resolved::Value(Value::Int(15)));
        assert_eq!(resolve_plain("42"), Resolved::Value(Value::Int(42)));
        assert_eq!(resolve_plain("1e3"), Resolved::Value(Value::Float(1000.0)));
        assert_eq!(resolve_plain("18446744073709551615"), Resolved::Uint);
        assert_eq!(resolve_plain("yes"), Resolved::Value(Value::str("yes")));
        assert!(!plain_is_str("yes"));
        assert!(!plain_is_str("1:20"));
        assert!(plain_is_str("hello"));
        assert!(!plain_is_str("2024-01-01"));
    }
}
