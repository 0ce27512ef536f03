//! What one YAML scalar means to go-yaml v2, and how sigs.k8s.io/yaml then writes it as JSON.
//!
//! The rules are go-yaml v2's `resolve.go` (`resolve`, `resolveTable`, `resolveMap`) and
//! `decode.go` (`scalar` into an `interface{}`), as vendored by sigs.k8s.io/yaml
//! (go.yaml.in/yaml/v2 v2.4.2, identical there to go-yaml's `v2` branch); number parsing is Go's
//! `strconv`, because that is what `resolve` calls.

use std::sync::LazyLock;

use anyhow::{anyhow, bail, Result};
use regex::Regex;
use serde_json::Value;

pub(super) const STR: &str = "tag:yaml.org,2002:str";
const INT: &str = "tag:yaml.org,2002:int";
const FLOAT: &str = "tag:yaml.org,2002:float";
const BOOL: &str = "tag:yaml.org,2002:bool";
const NULL: &str = "tag:yaml.org,2002:null";
const TIMESTAMP: &str = "tag:yaml.org,2002:timestamp";
const BINARY: &str = "tag:yaml.org,2002:binary";
pub(super) const MERGE: &str = "tag:yaml.org,2002:merge";

/// A scalar as go-yaml v2 hands it to sigs.k8s.io/yaml.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Resolved {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Str(String),
    /// v2 recognises it, then keeps the text when the target is an `interface{}`.
    Timestamp(String),
}

/// `yamlStyleFloat` in resolve.go: only these are tried as floats after the integer parsers.
static YAML_STYLE_FLOAT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$").expect("valid regex")
});

/// The layouts of `allowedTimestampFormats` in resolve.go, as Go's `time.Parse` reads them.
static TIMESTAMP_SHAPE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"^(\d{4})-(\d{1,2})-(\d{1,2})",
        r"(?:[Tt](\d{1,2}):(\d{1,2}):(\d{1,2})(?:[.,]\d{1,9})?(?:Z|[+-](\d{2}):(\d{2}))",
        r"| (\d{1,2}):(\d{1,2}):(\d{1,2})(?:[.,]\d{1,9})?)?$"
    ))
    .expect("valid regex")
});

/// A scalar node: `tag` is the resolved tag (`None` when the node has none), `plain` whether
/// it was written unquoted. A quoted scalar without a tag is always a string.
pub(super) fn resolve_node(value: &str, tag: Option<&str>, plain: bool) -> Result<Resolved> {
    match tag {
        None if !plain => Ok(Resolved::Str(value.to_owned())),
        Some(BINARY) => decode_base64(value).map(|bytes| Resolved::Str(go_json_text(&bytes))),
        tag => resolve(tag.unwrap_or(""), value),
    }
}

fn resolve(tag: &str, value: &str) -> Result<Resolved> {
    // Unknown and local tags (`!foo`, the non-specific `!`) leave the text as it is.
    if !["", STR, BOOL, INT, FLOAT, NULL, TIMESTAMP].contains(&tag) {
        return Ok(Resolved::Str(value.to_owned()));
    }
    let resolved = if tag == STR {
        Resolved::Str(value.to_owned())
    } else {
        resolve_implicit(value, tag.is_empty() || tag == TIMESTAMP)
    };
    let found = tag_of(&resolved);
    if tag.is_empty() || tag == STR || tag == found {
        return Ok(resolved);
    }
    // resolve.go's deferred check: an explicit !!float accepts an integer, and nothing else
    // changes kind.
    if let (FLOAT, Resolved::Int(int)) = (tag, &resolved) {
        return Ok(Resolved::Float(*int as f64));
    }
    bail!(
        "cannot decode {} `{}` as a {}",
        short_tag(found),
        quoted_briefly(value),
        short_tag(tag)
    )
}

/// Like v2's type errors, at most 7 characters of the value: it can be a Secret's data, and
/// the error must stay on one line.
fn quoted_briefly(value: &str) -> String {
    let brief: String = if value.chars().count() > 10 {
        value.chars().take(7).chain("...".chars()).collect()
    } else {
        value.to_owned()
    };
    brief.escape_debug().to_string()
}

fn resolve_implicit(value: &str, timestamps: bool) -> Resolved {
    if let Some(known) = resolve_known_word(value) {
        return known;
    }
    match value.as_bytes().first() {
        Some(b'.') => go_parse_float_with_underscores(value)
            .map_or_else(|| Resolved::Str(value.to_owned()), Resolved::Float),
        Some(b'0'..=b'9' | b'+' | b'-') => resolve_number(value, timestamps),
        _ => Resolved::Str(value.to_owned()),
    }
}

/// `resolveMap`: exactly these spellings, no other case variants (`yEs` stays a string).
fn resolve_known_word(value: &str) -> Option<Resolved> {
    Some(match value {
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            Resolved::Bool(true)
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            Resolved::Bool(false)
        }
        "" | "~" | "null" | "Null" | "NULL" => Resolved::Null,
        ".nan" | ".NaN" | ".NAN" => Resolved::Float(f64::NAN),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => Resolved::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => Resolved::Float(f64::NEG_INFINITY),
        _ => return None,
    })
}

/// The digit/sign branch of `resolve`. Base-60 numbers are deliberately unsupported there, and
/// its separate `0b` branch is unreachable with a Go that reads `0b` in `ParseInt(s, 0, 64)`.
fn resolve_number(value: &str, timestamps: bool) -> Resolved {
    if timestamps && is_timestamp(value) {
        return Resolved::Timestamp(value.to_owned());
    }
    let plain = value.replace('_', "");
    if let Some(int) = go_parse_int(&plain) {
        return Resolved::Int(int);
    }
    if let Some(uint) = go_parse_uint(&plain) {
        return Resolved::Uint(uint);
    }
    if YAML_STYLE_FLOAT.is_match(&plain) {
        if let Some(float) = finite_f64(&plain) {
            return Resolved::Float(float);
        }
    }
    Resolved::Str(value.to_owned())
}

/// `strconv.ParseInt(s, 0, 64)`: optional sign, then what `ParseUint` reads.
fn go_parse_int(text: &str) -> Option<i64> {
    let (negative, magnitude) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let magnitude = i128::from(go_parse_uint(magnitude)?);
    i64::try_from(if negative { -magnitude } else { magnitude }).ok()
}

/// `strconv.ParseUint(s, 0, 64)`: no sign; `0x`, `0o`, `0b` (any case) or a bare leading `0`
/// (octal — why `0644` is 420) choose the base.
fn go_parse_uint(text: &str) -> Option<u64> {
    let bytes = text.as_bytes();
    let (radix, digits) = match bytes {
        [] => return None,
        [b'0', prefix, _, ..] if matches!(prefix.to_ascii_lowercase(), b'b' | b'o' | b'x') => {
            let radix = match prefix.to_ascii_lowercase() {
                b'b' => 2,
                b'o' => 8,
                _ => 16,
            };
            (radix, &text[2..])
        }
        [b'0', ..] => (8, &text[1..]),
        _ => (10, text),
    };
    if digits.is_empty() {
        return Some(0); // only "0" gets here
    }
    if !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

/// `strconv.ParseFloat` for text that starts with `.`: Go allows `_` between digits there.
fn go_parse_float_with_underscores(text: &str) -> Option<f64> {
    let bytes = text.as_bytes();
    let separated = |i: usize| {
        i > 0 && bytes[i - 1].is_ascii_digit() && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)
    };
    if (0..bytes.len()).any(|i| bytes[i] == b'_' && !separated(i)) {
        return None;
    }
    let plain = text.replace('_', "");
    let shape = plain.strip_prefix('.')?;
    let (fraction, exponent) = shape.split_once(['e', 'E']).unwrap_or((shape, "0"));
    let exponent = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(fraction) || !all_digits(exponent) {
        return None;
    }
    finite_f64(&plain)
}

/// Go's `ParseFloat` reports overflow as an error, and `resolve` then keeps the text.
fn finite_f64(text: &str) -> Option<f64> {
    text.parse::<f64>().ok().filter(|f| f.is_finite())
}

fn is_timestamp(text: &str) -> bool {
    let Some(parts) = TIMESTAMP_SHAPE.captures(text) else {
        return false;
    };
    let number = |i: usize| {
        parts
            .get(i)
            .map_or(Some(0), |m| m.as_str().parse::<u32>().ok())
    };
    let fields: Option<Vec<u32>> = (1..=11).map(number).collect();
    let Some(f) = fields else { return false };
    let leap = f[0] % 4 == 0 && (f[0] % 100 != 0 || f[0] % 400 == 0);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let day_ok = (1..=12).contains(&f[1]) && (1..=month_days[f[1] as usize - 1]).contains(&f[2]);
    let clock_ok = |h: u32, m: u32, s: u32| h < 24 && m < 60 && s < 60;
    day_ok && clock_ok(f[3], f[4], f[5]) && f[6] <= 24 && f[7] <= 60 && clock_ok(f[8], f[9], f[10])
}

fn tag_of(resolved: &Resolved) -> &'static str {
    match resolved {
        Resolved::Null => NULL,
        Resolved::Bool(_) => BOOL,
        Resolved::Int(_) | Resolved::Uint(_) => INT,
        Resolved::Float(_) => FLOAT,
        Resolved::Str(_) => STR,
        Resolved::Timestamp(_) => TIMESTAMP,
    }
}

fn short_tag(tag: &str) -> String {
    match tag.strip_prefix("tag:yaml.org,2002:") {
        Some(name) => format!("!!{name}"),
        None => tag.to_owned(),
    }
}

/// Go's `base64.StdEncoding.DecodeString`: padding required, line breaks skipped. Also how
/// the API server reads a `[]byte` field from JSON (a Secret's data).
pub(crate) fn decode_base64(text: &str) -> Result<Vec<u8>> {
    let invalid = || anyhow!("!!binary value contains invalid base64 data");
    let symbols: Vec<u8> = text
        .bytes()
        .filter(|b| !matches!(b, b'\r' | b'\n'))
        .collect();
    if !symbols.len().is_multiple_of(4) {
        return Err(invalid());
    }
    let mut out = Vec::with_capacity(symbols.len() / 4 * 3);
    let quanta = symbols.chunks(4).count();
    for (index, quantum) in symbols.chunks(4).enumerate() {
        let padding = quantum.iter().rev().take_while(|&&b| b == b'=').count();
        let last = index + 1 == quanta;
        if padding > 2 || (padding > 0 && !last) {
            return Err(invalid());
        }
        let mut bits = 0u32;
        for &symbol in &quantum[..4 - padding] {
            bits = bits << 6 | base64_value(symbol).ok_or_else(invalid)?;
        }
        bits <<= 6 * padding;
        out.extend_from_slice(&bits.to_be_bytes()[1..4 - padding]);
    }
    Ok(out)
}

fn base64_value(symbol: u8) -> Option<u32> {
    Some(u32::from(match symbol {
        b'A'..=b'Z' => symbol - b'A',
        b'a'..=b'z' => symbol - b'a' + 26,
        b'0'..=b'9' => symbol - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    }))
}

/// Go's `json.Marshal` writes each byte of invalid UTF-8 as its own U+FFFD.
fn go_json_text(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len());
    let mut rest = bytes;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(valid) => {
                text.push_str(valid);
                break;
            }
            Err(error) => {
                let (valid, bad) = rest.split_at(error.valid_up_to());
                text.push_str(std::str::from_utf8(valid).unwrap_or_default());
                let bad_len = error.error_len().unwrap_or(bad.len());
                text.extend(std::iter::repeat_n('\u{FFFD}', bad_len));
                rest = &bad[bad_len..];
            }
        }
    }
    text
}

/// The JSON sigs.k8s.io/yaml writes (`json.Marshal`): a float with no fraction below 1e21 is
/// written as plain digits, which the API server reads back as an integer.
pub(super) fn to_json(resolved: Resolved) -> Result<Value> {
    Ok(match resolved {
        Resolved::Null => Value::Null,
        Resolved::Bool(b) => Value::Bool(b),
        Resolved::Int(i) => Value::from(i),
        Resolved::Uint(u) => Value::from(u),
        Resolved::Str(s) | Resolved::Timestamp(s) => Value::String(s),
        Resolved::Float(f) if !f.is_finite() => {
            let shown = if f.is_nan() {
                "NaN"
            } else if f > 0.0 {
                "+Inf"
            } else {
                "-Inf"
            };
            bail!("json: unsupported value: {shown}")
        }
        Resolved::Float(f) if f.fract() == 0.0 && f.abs() < 1e21 => {
            let digits = format!("{f}");
            let as_int = digits.parse::<i64>().ok().map(Value::from);
            as_int
                .or_else(|| digits.parse::<u64>().ok().map(Value::from))
                .unwrap_or_else(|| Value::from(f))
        }
        Resolved::Float(f) => Value::from(f),
    })
}

/// `convertToJSONableObject` in sigs.k8s.io/yaml's yaml.go: the JSON name of a map key.
pub(super) fn to_json_key(resolved: Resolved) -> Result<String> {
    Ok(match resolved {
        Resolved::Str(s) | Resolved::Timestamp(s) => s,
        Resolved::Int(i) => i.to_string(),
        Resolved::Bool(b) => b.to_string(),
        Resolved::Float(f) => go_format_float32_g(f),
        Resolved::Uint(u) => bail!("unsupported map key of type: uint64, key: {u}"),
        Resolved::Null => bail!("unsupported map key of type: <nil>"),
    })
}

/// `strconv.FormatFloat(f, 'g', -1, 32)` with yaml.go's `.inf`/`.nan` spellings: the key is
/// rounded to float32 first (so `0.1` stays "0.1"), exponent form from 1e+06 and below 1e-04.
fn go_format_float32_g(f: f64) -> String {
    let narrow = f as f32;
    if narrow.is_nan() {
        return ".nan".into();
    }
    if narrow.is_infinite() {
        return if narrow > 0.0 { ".inf" } else { "-.inf" }.into();
    }
    let sign = if narrow.is_sign_negative() { "-" } else { "" };
    if narrow == 0.0 {
        return format!("{sign}0");
    }
    let shortest = format!("{:e}", narrow.abs());
    let (mantissa, exponent) = shortest.split_once('e').unwrap_or((&shortest, "0"));
    let digits = mantissa.replace('.', "");
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if !(-4..6).contains(&exponent) {
        let fraction = if digits.len() > 1 {
            format!(".{}", &digits[1..])
        } else {
            String::new()
        };
        let exp_sign = if exponent < 0 { '-' } else { '+' };
        return format!(
            "{sign}{}{fraction}e{exp_sign}{:02}",
            &digits[..1],
            exponent.abs()
        );
    }
    if exponent < 0 {
        let zeros = "0".repeat((-exponent - 1) as usize);
        return format!("{sign}0.{zeros}{digits}");
    }
    let whole = exponent as usize + 1;
    if digits.len() <= whole {
        format!("{sign}{digits}{}", "0".repeat(whole - digits.len()))
    } else {
        format!("{sign}{}.{}", &digits[..whole], &digits[whole..])
    }
}
