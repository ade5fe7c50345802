//! Go-compatible number and time formatting (`strconv.FormatFloat`, `time.MarshalText`).

/// Shortest round-trip digits and decimal exponent: `value = 0.d1d2… × 10^dp`.
fn shortest_digits(f: f64) -> (String, i32) {
    let s = format!("{:e}", f.abs());
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let exp: i32 = exp.parse().unwrap_or(0);
    (digits, exp + 1)
}

fn special(f: f64) -> Option<&'static str> {
    if f.is_nan() {
        Some("NaN")
    } else if f == f64::INFINITY {
        Some("+Inf")
    } else if f == f64::NEG_INFINITY {
        Some("-Inf")
    } else {
        None
    }
}

/// `strconv.FormatFloat(f, 'f', -1, 64)`: never an exponent.
pub(crate) fn format_float_f(f: f64) -> String {
    if let Some(s) = special(f) {
        return s.to_string();
    }
    format!("{f}")
}

/// `strconv.FormatFloat(f, 'e', -1, 64)`: `1.5e+30`, `1e-06`.
pub(crate) fn format_float_e(f: f64) -> String {
    if let Some(s) = special(f) {
        return s.to_string();
    }
    let (d, dp) = shortest_digits(f);
    let mut out = String::new();
    if f.is_sign_negative() {
        out.push('-');
    }
    out.push_str(&d[..1]);
    if d.len() > 1 {
        out.push('.');
        out.push_str(&d[1..]);
    }
    let e = if f == 0.0 { 0 } else { dp - 1 };
    out.push('e');
    out.push(if e < 0 { '-' } else { '+' });
    out.push_str(&format!("{:02}", e.abs()));
    out
}

/// `strconv.FormatFloat(f, 'g', -1, 64)` (what go-yaml writes for floats).
pub(crate) fn format_float_g(f: f64) -> String {
    if let Some(s) = special(f) {
        return s.to_string();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    let (d, dp) = shortest_digits(f);
    let nd = d.len() as i32;
    let mut eprec = 6;
    if eprec > nd && nd >= dp {
        eprec = nd;
    }
    let exp = dp - 1;
    if exp < -4 || exp >= eprec {
        format_float_e(f)
    } else {
        format_float_f(f)
    }
}

/// Go `encoding/json` float formatting.
pub(crate) fn format_float_json(f: f64) -> String {
    let a = f.abs();
    if a != 0.0 && !(1e-6..1e21).contains(&a) {
        let s = format_float_e(f);
        // e-07 -> e-7
        let b = s.as_bytes();
        let n = b.len();
        if n >= 4 && b[n - 4] == b'e' && b[n - 3] == b'-' && b[n - 2] == b'0' {
            return format!("{}{}", &s[..n - 2], &s[n - 1..]);
        }
        return s;
    }
    format_float_f(f)
}

/// A parsed point in time: civil fields plus UTC offset in seconds.
struct Civil {
    y: i64,
    mo: u32,
    d: u32,
    h: u32,
    mi: u32,
    s: u32,
    nanos: u32,
    off: i32,
}

fn num(s: &str, i: &mut usize, min: usize, max: usize) -> Option<u32> {
    let b = s.as_bytes();
    let st = *i;
    while *i < b.len() && b[*i].is_ascii_digit() && *i - st < max {
        *i += 1;
    }
    if *i - st < min {
        return None;
    }
    s[st..*i].parse().ok()
}

fn parse_civil(s: &str, allow_space: bool, date_only: bool) -> Option<Civil> {
    let b = s.as_bytes();
    let mut i = 0;
    let y = num(s, &mut i, 4, 4)? as i64;
    if b.get(i) != Some(&b'-') {
        return None;
    }
    i += 1;
    let mo = num(s, &mut i, 1, 2)?;
    if b.get(i) != Some(&b'-') {
        return None;
    }
    i += 1;
    let d = num(s, &mut i, 1, 2)?;
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    let mut c = Civil {
        y,
        mo,
        d,
        h: 0,
        mi: 0,
        s: 0,
        nanos: 0,
        off: 0,
    };
    if i == b.len() {
        return if date_only { Some(c) } else { None };
    }
    let sep = b[i];
    let space = sep == b' ';
    if !(sep == b'T' || sep == b't' || (allow_space && space)) {
        return None;
    }
    i += 1;
    c.h = num(s, &mut i, 1, 2)?;
    if b.get(i) != Some(&b':') {
        return None;
    }
    i += 1;
    c.mi = num(s, &mut i, 1, 2)?;
    if b.get(i) != Some(&b':') {
        return None;
    }
    i += 1;
    c.s = num(s, &mut i, 1, 2)?;
    if c.h > 23 || c.mi > 59 || c.s > 59 {
        return None;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        c.nanos = fraction(s, &mut i)?;
    }
    if space {
        return if i == b.len() { Some(c) } else { None };
    }
    c.off = offset(s, i)?;
    Some(c)
}

/// The digits of a fraction of a second at `*i` (at least one; beyond nine ignored), as
/// nanoseconds.
fn fraction(s: &str, i: &mut usize) -> Option<u32> {
    let b = s.as_bytes();
    let st = *i;
    while *i < b.len() && b[*i].is_ascii_digit() {
        *i += 1;
    }
    if *i == st {
        return None;
    }
    let mut frac = s[st..(*i).min(st + 9)].to_string();
    while frac.len() < 9 {
        frac.push('0');
    }
    frac.parse().ok()
}

/// The zone at `i`, which must end `s`: `Z`/`z` (0) or `±hh:mm`, in seconds east of UTC.
fn offset(s: &str, mut i: usize) -> Option<i32> {
    let b = s.as_bytes();
    match b.get(i) {
        Some(b'Z') | Some(b'z') if i + 1 == b.len() => Some(0),
        Some(&sg @ (b'+' | b'-')) => {
            i += 1;
            let oh = num(s, &mut i, 2, 2)?;
            if b.get(i) != Some(&b':') {
                return None;
            }
            i += 1;
            let om = num(s, &mut i, 2, 2)?;
            if i != b.len() {
                return None;
            }
            let off = (oh * 3600 + om * 60) as i32;
            Some(if sg == b'-' { -off } else { off })
        }
        _ => None,
    }
}

fn format_civil(c: &Civil, nanos: bool) -> String {
    let mut out = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        c.y, c.mo, c.d, c.h, c.mi, c.s
    );
    if nanos && c.nanos > 0 {
        let f = format!("{:09}", c.nanos);
        out.push('.');
        out.push_str(f.trim_end_matches('0'));
    }
    if c.off == 0 {
        out.push('Z');
    } else {
        let sg = if c.off < 0 { '-' } else { '+' };
        let o = c.off.abs();
        out.push_str(&format!("{sg}{:02}:{:02}", o / 3600, (o % 3600) / 60));
    }
    out
}

/// go-yaml v3 timestamp resolution of a plain scalar; returns Go `MarshalText` form.
pub(crate) fn yaml_timestamp(s: &str) -> Option<String> {
    parse_civil(s, true, true).map(|c| format_civil(&c, true))
}

/// Parses RFC 3339 (as Go `time.Parse(time.RFC3339, …)`), returning the `MarshalText` form.
pub(crate) fn rfc3339_nano(s: &str) -> Option<String> {
    parse_civil(s, false, false).map(|c| format_civil(&c, true))
}

/// Parses RFC 3339 and formats it again with Go `time.RFC3339` (no fraction): the MAC AAD.
pub(crate) fn rfc3339_seconds(s: &str) -> Option<String> {
    parse_civil(s, false, false).map(|c| format_civil(&c, false))
}

/// The current UTC time truncated to seconds, RFC 3339 (`2026-11-22T23:08:02Z`).
pub(crate) fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats() {
        assert_eq!(format_float_f(1.0), "1");
        assert_eq!(format_float_f(1.5e30), "1500000000000000000000000000000");
        assert_eq!(format_float_f(1e-6), "0.000001");
        assert_eq!(format_float_g(1e3), "1000");
        assert_eq!(format_float_g(1.5e30), "1.5e+30");
        assert_eq!(format_float_g(1e-6), "1e-06");
        assert_eq!(format_float_json(1e-7), "1e-7");
        assert_eq!(format_float_json(1.5e30), "1.5e+30");
        assert_eq!(
            format_float_json(12345678901234567000.0),
            "12345678901234567000"
        );
    }

    #[test]
    fn times() {
        assert_eq!(
            yaml_timestamp("2024-01-01").unwrap(),
            "2024-01-01T00:00:00Z"
        );
        assert_eq!(
            yaml_timestamp("2001-12-14t21:59:43.10-05:00").unwrap(),
            "2001-12-14T21:59:43.1-05:00"
        );
        assert_eq!(
            yaml_timestamp("2024-01-02 03:04:05").unwrap(),
            "2024-01-02T03:04:05Z"
        );
        assert!(yaml_timestamp("2024-01-02T03:04:05").is_none());
        assert_eq!(
            rfc3339_seconds("2026-11-22T23:08:02.000Z").unwrap(),
            "2026-11-22T23:08:02Z"
        );
        assert_eq!(
            rfc3339_seconds("2026-11-22T23:08:02+00:00").unwrap(),
            "2026-11-22T23:08:02Z"
        );
    }
}
