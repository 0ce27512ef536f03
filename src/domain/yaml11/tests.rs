//! YAML 1.1 as helm reads it, on the inputs that tell go-yaml v2 apart from YAML 1.2 parsers.

use super::*;

fn one(yaml: &str) -> Result<Value> {
    Ok(documents(yaml)?.into_iter().next().unwrap_or(Value::Null))
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

/// `(value of v, JSON sigs.k8s.io/yaml writes)`. The cases marked `decode_test` are from
/// go-yaml v2's decode_test.go (`unmarshalTests`); every case was also checked against helm
/// v3.17.3's own reading (`fromYaml | toJson`), except the integers above 2^53, which that
/// check cannot show exactly.
const SCALARS: &[(&str, &str)] = &[
    // decode_test: ints, floats, bools and nulls "from spec".
    ("685230", "685230"),
    ("+685_230", "685230"),
    ("02472256", "685230"),
    ("0x_0A_74_AE", "685230"),
    ("0b1010_0111_0100_1010_1110", "685230"),
    ("-0b101010", "-42"),
    (
        "-0b1000000000000000000000000000000000000000000000000000000000000000",
        "-9223372036854775808",
    ),
    ("0b10", "2"),
    ("0xA", "10"),
    ("6.8523e+5", "685230"),
    ("685.230_15e+03", "685230.15"),
    ("685_230.15", "685230.15"),
    ("0.1", "0.1"),
    (".1", "0.1"),
    ("-.1", "-0.1"),
    ("123456e1", "1234560"),
    ("y", "true"),
    ("NO", "false"),
    ("True", "true"),
    ("on", "true"),
    ("", "null"),
    ("~", "null"),
    ("null", "null"),
    ("190:20:30", "\"190:20:30\""),
    ("2015-01-01", "\"2015-01-01\""),
    ("2015-02-24T18:19:39.12Z", "\"2015-02-24T18:19:39.12Z\""),
    ("-b_c", "\"-b_c\""),
    ("50cent_of_dollar", "\"50cent_of_dollar\""),
    // decode_test: explicit tags.
    ("!!float '1.1'", "1.1"),
    ("!!float -1", "-1"),
    ("!!null ''", "null"),
    ("! test", "\"test\""),
    ("!!str 2015-01-01", "\"2015-01-01\""),
    ("!!timestamp \"2015-01-01\"", "\"2015-01-01\""),
    // File modes, the reason this module exists.
    ("0644", "420"),
    ("0777", "511"),
    ("0755", "493"),
    ("0600", "384"),
    ("-0644", "-420"),
    ("'0644'", "\"0644\""),
    ("!!str 0644", "\"0644\""),
    ("!!int \"0644\"", "420"),
    ("! 0644", "\"0644\""),
    ("!foo 0644", "\"0644\""),
    // Go's ParseInt(s, 0, 64): any-case prefixes, and a bad octal digit makes a float.
    ("0o17", "15"),
    ("0X1f", "31"),
    ("0B11", "3"),
    ("+0x10", "16"),
    ("08", "8"),
    ("0778", "778"),
    ("00", "0"),
    ("-0", "0"),
    ("1__0", "10"),
    ("1_", "1"),
    ("_1", "\"_1\""),
    ("0x", "\"0x\""),
    ("1,000", "\"1,000\""),
    // int64, then uint64, then float64.
    ("9223372036854775807", "9223372036854775807"),
    ("9223372036854775808", "9223372036854775808"),
    ("18446744073709551615", "18446744073709551615"),
    ("0xFFFFFFFFFFFFFFFF", "18446744073709551615"),
    ("18446744073709551616", "18446744073709551616.0"),
    ("-9223372036854775809", "-9223372036854775808.0"), // Go writes -9223372036854776000
    ("+18446744073709551615", "18446744073709551615.0"),
    // Floats: json.Marshal writes an integral one as digits; overflow stays text.
    ("1.0", "1"),
    ("-0.0", "0"),
    ("1e3", "1000"),
    ("5.", "5"),
    ("1.5", "1.5"),
    ("+.5", "0.5"),
    (".5_0", "0.5"),
    ("._5", "\"._5\""),
    ("1e20", "1e20"),
    ("1e-7", "1e-7"),
    ("1e400", "\"1e400\""),
    ("1e-400", "0"),
    // Booleans and nulls: exactly resolve.go's spellings.
    ("yes", "true"),
    ("Yes", "true"),
    ("YES", "true"),
    ("yEs", "\"yEs\""),
    ("n", "false"),
    ("off", "false"),
    ("OFF", "false"),
    ("oN", "\"oN\""),
    ("TRUE", "true"),
    ("tRue", "\"tRue\""),
    ("NULL", "null"),
    ("nUll", "\"nUll\""),
    ("\"yes\"", "\"yes\""),
    ("!!bool \"on\"", "true"),
    ("!!float 1", "1"),
    ("!!binary aGVsbG8=", "\"hello\""),
    ("!!binary /w==", "\"\u{FFFD}\""),
    ("!!map 0644", "\"0644\""),
    ("<<", "\"<<\""),
    ("12:30:45.5", "\"12:30:45.5\""),
    ("'it''s'", "\"it's\""),
];

#[test]
fn scalars_resolve_as_go_yaml_v2_does() {
    for (yaml, expected) in SCALARS {
        let got = one(&format!("v: {yaml}\n")).unwrap_or_else(|e| panic!("{yaml}: {e}"));
        assert_eq!(got["v"], json(expected), "v: {yaml}");
    }
}

/// decode_test.go's `unmarshalErrorTests`, and json.Marshal's refusal of non-finite floats.
#[test]
fn refuses_what_helm_refuses_with_one_line() {
    let cases = [
        (
            "v: !!float 'error'",
            "cannot decode !!str `error` as a !!float",
        ),
        ("v: !!int 1.5", "cannot decode !!float `1.5` as a !!int"),
        ("v: !!float 18446744073709551615", "as a !!float"),
        ("v: !!bool 1", "cannot decode !!int `1` as a !!bool"),
        ("v: !!timestamp abc", "as a !!timestamp"),
        ("v: [A,", "did not find expected node content"),
        ("a: *b\n", "unknown anchor"),
        ("b: *a\na: &a {c: 1}", "unknown anchor"),
        ("a: &a\n  b: *a\n", "contains itself"),
        (
            "a: &x null\n<<:\n- *x\nb: &x {}\n",
            "map merge requires map",
        ),
        ("{<<: 1}", "map merge requires map"),
        ("a: !!binary ==", "invalid base64"),
        ("{[.]: x}", "invalid map key"),
        ("{~: x}", "unsupported map key of type: <nil>"),
        (
            "{18446744073709551615: x}",
            "unsupported map key of type: uint64",
        ),
        ("v: .inf", "json: unsupported value: +Inf"),
        ("v: -.Inf", "json: unsupported value: -Inf"),
        ("v: .NaN", "json: unsupported value: NaN"),
    ];
    for (yaml, expected) in cases {
        let message = format!("{:#}", one(yaml).unwrap_err());
        assert!(message.contains(expected), "{yaml}: {message}");
        assert!(!message.contains('\n'), "{yaml}: {message}");
    }
}

#[test]
fn refuses_alias_bombs_like_go_yaml_v2() {
    let mut yaml = String::from("a: &a [00,00,00,00,00,00,00,00,00]\n");
    for (name, previous) in ["b", "c", "d", "e", "f", "g", "h", "i"]
        .iter()
        .zip("abcdefgh".chars())
    {
        let aliases = vec![format!("*{previous}"); 9].join(",");
        yaml.push_str(&format!("{name}: &{name} [{aliases}]\n"));
    }
    let error = one(&yaml).unwrap_err();
    assert!(error.to_string().contains("excessive aliasing"), "{error}");
}

/// The keys sigs.k8s.io/yaml's convertToJSONableObject writes (floats through float32 'g').
#[test]
fn map_keys_become_json_names_like_sigs_k8s_yaml() {
    let yaml = "{1: a, -1: b, 1.5: c, 1e6: d, 1e5: e, 0.1: f, true: g, yes: h, off: i, \
                2015-01-01: j, 0644: k, 3.14159265358979: l, .inf: m, -.inf: nn, .nan: o, \
                -0.0: p, 1e-5: q, 1e-4: r, 123456789.0: s, 0.000123: t, \"2\": u, '0x10': v}";
    let expected = json(
        r#"{"1": "a", "-1": "b", "1.5": "c", "1e+06": "d", "100000": "e", "0.1": "f",
            "true": "h", "false": "i", "2015-01-01": "j", "420": "k", "3.1415927": "l",
            ".inf": "m", "-.inf": "nn", ".nan": "o", "-0": "p", "1e-05": "q", "0.0001": "r",
            "1.2345679e+08": "s", "0.000123": "t", "2": "u", "0x10": "v"}"#,
    );
    assert_eq!(one(yaml).unwrap(), expected);
}

/// decode_test.go's `mergeTests` (from yaml.org/type/merge.html): every map equals `plain`.
#[test]
fn merge_keys_follow_go_yaml_v2() {
    let yaml = r#"
anchors:
  - &CENTER { "x": 1, "y": 2 }
  - &LEFT   { "x": 0, "y": 2 }
  - &BIG    { "r": 10 }
  - &SMALL  { "r": 1 }
plain: { "x": 1, "y": 2, "r": 10, label: center/big }
mergeOne: { << : *CENTER, "r": 10, label: center/big }
mergeMultiple: { << : [ *CENTER, *BIG ], label: center/big }
override: { << : [ *BIG, *LEFT, *SMALL ], "x": 1, label: center/big }
shortTag: { !!merge "<<" : [ *CENTER, *BIG ], label: center/big }
longTag: { !<tag:yaml.org,2002:merge> "<<" : [ *CENTER, *BIG ], label: center/big }
inlineMap: { << : {"x": 1, "y": 2, "r": 10}, label: center/big }
inlineSequenceMap: { << : [ *CENTER, {"r": 10} ], label: center/big }
"#;
    let all = one(yaml).unwrap();
    for (name, merged) in all.as_object().unwrap() {
        if name != "anchors" {
            assert_eq!(merged, &all["plain"], "{name}");
        }
    }
}

/// v2 writes a merge into the map where it stands, so a key before `<<` is overwritten and
/// one after it wins; a quoted `"<<"` is an ordinary key.
#[test]
fn a_merge_applies_where_it_stands() {
    let cases = [
        ("{a: 1, <<: {a: 2, b: 2}}", r#"{"a": 2, "b": 2}"#),
        ("{<<: {a: 2, b: 2}, a: 1}", r#"{"a": 1, "b": 2}"#),
        ("{<<: [{a: 1}, {a: 2, b: 2}]}", r#"{"a": 1, "b": 2}"#),
        ("{\"<<\": {a: 1}}", r#"{"<<": {"a": 1}}"#),
        (
            "{a: &a {x: 1}, b: &b {<<: *a, w: 2}, c: {<<: *b, z: 3}}",
            r#"{"a": {"x": 1},
            "b": {"x": 1, "w": 2}, "c": {"x": 1, "w": 2, "z": 3}}"#,
        ),
        (
            "base: &base {defaultMode: 0644, items: [a]}\nvolume: {<<: *base, defaultMode: 0600}",
            r#"{"base": {"defaultMode": 420, "items": ["a"]},
                "volume": {"defaultMode": 384, "items": ["a"]}}"#,
        ),
    ];
    for (yaml, expected) in cases {
        assert_eq!(one(yaml).unwrap(), json(expected), "{yaml}");
    }
}

/// decode_test.go: yaml-test-suite 3GZX (spec example 7.1), and a later key overwrites.
#[test]
fn anchors_can_be_redefined_and_aliases_copy_the_latest() {
    let yaml = "First occurrence: &anchor Foo\nSecond occurrence: *anchor\n\
                Override anchor: &anchor Bar\nReuse anchor: *anchor\nlist: &l [1, *anchor]\n\
                again: *l\ndup: 1\ndup: 2\n";
    let expected = json(
        r#"{"First occurrence": "Foo", "Second occurrence": "Foo", "Override anchor": "Bar",
            "Reuse anchor": "Bar", "list": [1, "Bar"], "again": [1, "Bar"], "dup": 2}"#,
    );
    assert_eq!(one(yaml).unwrap(), expected);
}

#[test]
fn reads_every_document_and_keeps_anchors_to_their_own() {
    let docs = documents("---\n# only a comment\n---\na: &x 1\n---\nb: 2\n...\n").unwrap();
    assert_eq!(
        docs,
        [Value::Null, json(r#"{"a": 1}"#), json(r#"{"b": 2}"#)]
    );
    assert!(documents("").unwrap().is_empty());
    let error = documents("a: &x 1\n---\nb: *x\n").unwrap_err();
    assert!(error.to_string().contains("unknown anchor"), "{error}");
    let tagged = documents("%TAG !y! tag:yaml.org,2002:\n---\nv: !y!int '1'\n").unwrap();
    assert_eq!(tagged, [json(r#"{"v": 1}"#)]);
}

/// The parser stops where v2's does; the JSON stops sooner, so that callers can drop it.
#[test]
fn nesting_has_limits() {
    let nested = |depth: usize| format!("{}x\n", "- ".repeat(depth));
    assert_eq!(documents(&nested(MAX_VALUE_DEPTH)).unwrap().len(), 1);
    let error = documents(&nested(MAX_VALUE_DEPTH + 1)).unwrap_err();
    assert!(error.to_string().contains("deeper than 1000"), "{error}");
    let error = documents(&nested(MAX_DEPTH + 1)).unwrap_err();
    assert!(
        error.to_string().contains("exceeded max depth of 10000"),
        "{error}"
    );
}

#[test]
fn a_refused_value_is_shown_briefly_on_one_line() {
    let message = one("password: !!int hunter2-secret\n")
        .unwrap_err()
        .to_string();
    assert_eq!(message, "cannot decode !!str `hunter2...` as a !!int");
    let message = one("v: !!int |\n  a\n  b\n").unwrap_err().to_string();
    assert_eq!(message, "cannot decode !!str `a\\nb\\n` as a !!int");
}
