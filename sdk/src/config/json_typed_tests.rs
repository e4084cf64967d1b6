//! The configuration JSON reader with typed values (structs, enums, maps, options, wide
//! integers, skipped fields) against serde_json, and the errors it reports.

use super::json::from_slice;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Deserialize, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
struct Typed {
    name: String,
    #[serde(default)]
    count: u8,
    #[serde(default)]
    ratio: Option<f64>,
    #[serde(default)]
    small: f32,
    #[serde(default)]
    offset: i16,
    #[serde(default)]
    flag: bool,
    #[serde(default)]
    letter: Option<char>,
    #[serde(default)]
    mode: Option<Mode>,
    #[serde(default)]
    pair: Option<(u32, String)>,
    #[serde(default)]
    by_id: BTreeMap<u32, String>,
    #[serde(default)]
    unit: Option<()>,
    #[serde(default)]
    nested: Vec<Inner>,
}

#[derive(Deserialize, Debug, PartialEq)]
enum Mode {
    Off,
    Limit(u32),
    Range { low: i32, high: i32 },
    Pair(u8, u8),
}

#[derive(Deserialize, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
struct Inner {
    key: String,
    #[serde(default)]
    tags: Vec<String>,
}

#[test]
fn typed_documents_agree_with_serde_json() {
    let docs = [
        r#"{"name":"a"}"#,
        r#"{"name":"a","count":255,"ratio":0.25,"small":1.5,"offset":-32768,"flag":true,"letter":"x"}"#,
        r#"{"name":"a","ratio":null,"letter":null,"mode":null,"pair":null,"unit":null}"#,
        r#"{"name":"a","mode":"Off"}"#,
        r#"{"name":"a","mode":{"Limit":7}}"#,
        r#"{"name":"a","mode":{"Range":{"low":-1,"high":2}}}"#,
        r#"{"name":"a","mode":{"Pair":[1,2]}}"#,
        r#"{"name":"a","pair":[1,"x"]}"#,
        r#"{"name":"a","by_id":{"1":"one","4294967295":"max"}}"#,
        r#"{"name":"a","nested":[{"key":"k","tags":["t"]},{"key":"\u006b"}]}"#,
        r#"{"name":"a","ratio":5}"#,
        r#"{"name":"a","ratio":-5}"#,
        // Rejected by both:
        r#"{"name":"a","count":256}"#,
        r#"{"name":"a","count":-1}"#,
        r#"{"name":"a","count":1.5}"#,
        r#"{"name":"a","offset":40000}"#,
        r#"{"name":1.5}"#,
        r#"{"name":1e400}"#,
        r#"{"name":"a","flag":1}"#,
        r#"{"name":"a","letter":"xy"}"#,
        r#"{"name":"a","mode":"Limit"}"#,
        r#"{"name":"a","mode":{"Off":1}}"#,
        r#"{"name":"a","mode":{"Limit":7,"Off":null}}"#,
        r#"{"name":"a","mode":{"Other":7}}"#,
        r#"{"name":"a","mode":{}}"#,
        r#"{"name":"a","mode":5}"#,
        r#"{"name":"a","pair":[1]}"#,
        r#"{"name":"a","pair":[1,"x",2]}"#,
        r#"{"name":"a","by_id":{"x":"one"}}"#,
        r#"{"name":"a","by_id":{"-1":"one"}}"#,
        r#"{"name":"a","unit":1}"#,
        r#"{"name":"a","nested":[{"tags":[]}]}"#,
        r#"{"name":"a","nested":[{"key":"k","tags":[1]}]}"#,
        r#"{"name":"a","extra":1}"#,
        r#"{"count":1}"#,
        r#""a""#,
    ];
    for doc in docs {
        let ours = from_slice::<Typed>(doc.as_bytes());
        let reference = serde_json::from_str::<Typed>(doc);
        match (&ours, &reference) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{doc}"),
            (Err(_), Err(_)) => {}
            _ => panic!("{doc}: ours {ours:?}, serde_json {reference:?}"),
        }
    }
}

/// Where the reader parts from serde_json on purpose: a struct is read from an object only,
/// never from an array by field order, and a unit variant from its name only, never from
/// `{"Variant": null}`: undocumented second spellings a typo could fall into.
#[test]
fn structs_are_objects_and_unit_variants_are_names() {
    assert!(serde_json::from_str::<Typed>(r#"{"name":"a","mode":{"Off":null}}"#).is_ok());
    let err = from_slice::<Typed>(br#"{"name":"a","mode":{"Off":null}}"#).unwrap_err();
    assert_eq!(
        err.to_string(),
        "at mode: invalid type: object, expected the variant's name as a string"
    );
    assert!(serde_json::from_str::<Typed>(r#"["a"]"#).is_ok());
    let err = from_slice::<Typed>(br#"["a"]"#).unwrap_err();
    assert_eq!(
        err.to_string(),
        "at .: invalid type: array, expected struct Typed"
    );
    let err = from_slice::<Typed>(br#"{"name":"a","nested":[["k"]]}"#).unwrap_err();
    assert_eq!(err.path(), "nested[0]");
}

/// serde_json's answer for a finite number beyond `f32` depends on which of its features the
/// build unifies (alone: infinity; in this workspace: "number out of range"), so it is no
/// oracle here. We refuse it: a config value must not silently become infinity.
#[test]
fn a_number_beyond_f32_is_refused_not_made_infinite() {
    let err = from_slice::<Typed>(br#"{"name":"a","small":1e40}"#).unwrap_err();
    assert!(err.to_string().contains("number out of range"), "{err}");
    let ok = from_slice::<Typed>(br#"{"name":"a","small":3.4e38}"#).unwrap();
    assert!(ok.small.is_finite());
}

/// Without `deny_unknown_fields`, unknown fields are skipped through `ignored_any`.
#[derive(Deserialize, Debug, PartialEq)]
struct Loose {
    name: String,
    #[serde(default)]
    ratio: f64,
}

#[test]
fn ignored_values_are_checked_but_floats_in_them_are_not_parsed() {
    let docs = [
        r#"{"name":"a","extra":1.5}"#,
        r#"{"name":"a","extra":-0.0e-7,"ratio":2}"#,
        r#"{"name":"a","extra":1e400}"#,
        r#"{"extra":[1.5,{"x":[true,null,-2e-2]},"s"],"name":"a","more":{}}"#,
        r#"{"name":"a","ratio":0.5,"extra":{"deep":[[[[1.0]]]]}}"#,
        // Rejected by both: ignored values must still be JSON.
        r#"{"name":"a","extra":[1,]}"#,
        r#"{"name":"a","extra":01}"#,
        r#"{"name":"a","extra":1.}"#,
        r#"{"name":"a","extra":"\x"}"#,
        r#"{"name":"a","extra":{"k" 1}}"#,
        r#"{"name":"a","extra":nul}"#,
        r#"{"name":"a","ratio":1e400}"#,
    ];
    for doc in docs {
        let ours = from_slice::<Loose>(doc.as_bytes());
        let reference = serde_json::from_str::<Loose>(doc);
        match (&ours, &reference) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{doc}"),
            (Err(_), Err(_)) => {}
            _ => panic!("{doc}: ours {ours:?}, serde_json {reference:?}"),
        }
    }
    // Stricter than serde_json, which does not check surrogates in strings it skips.
    let doc = r#"{"name":"a","extra":"\uD800"}"#;
    assert!(serde_json::from_str::<Loose>(doc).is_ok());
    assert!(from_slice::<Loose>(doc.as_bytes()).is_err());
}

#[test]
fn wide_integers_agree_with_serde_json() {
    let docs = [
        "0",
        "18446744073709551615",
        "18446744073709551616",
        "340282366920938463463374607431768211455",
        "340282366920938463463374607431768211456",
        "-170141183460469231731687303715884105728",
        "-170141183460469231731687303715884105729",
        "-1",
        "1.0",
        "1e3",
        "\"1\"",
    ];
    for doc in docs {
        let (ours, reference) = (
            from_slice::<u128>(doc.as_bytes()),
            serde_json::from_str::<u128>(doc),
        );
        assert_eq!(ours.ok(), reference.ok(), "u128 {doc}");
        let (ours, reference) = (
            from_slice::<i128>(doc.as_bytes()),
            serde_json::from_str::<i128>(doc),
        );
        assert_eq!(ours.ok(), reference.ok(), "i128 {doc}");
    }
}

fn error(doc: &str) -> (String, String) {
    let err = from_slice::<Typed>(doc.as_bytes()).unwrap_err();
    (err.path(), err.into_reason())
}

#[test]
fn errors_name_the_path_and_what_was_expected() {
    assert_eq!(
        error(r#"{"name":1.5}"#),
        (
            "name".into(),
            "invalid type: floating point number, expected a string".into()
        )
    );
    assert_eq!(
        error(r#"{"name":"a","count":256}"#),
        (
            "count".into(),
            "invalid value: integer `256`, expected u8".into()
        )
    );
    // Negative integers are printed with their sign, down to i64::MIN, as serde_json does.
    assert_eq!(
        error(r#"{"name":"a","count":-1}"#),
        (
            "count".into(),
            "invalid value: integer `-1`, expected u8".into()
        )
    );
    assert_eq!(
        error(r#"{"name":"a","offset":-9223372036854775808}"#),
        (
            "offset".into(),
            "invalid value: integer `-9223372036854775808`, expected i16".into()
        )
    );
    assert_eq!(
        serde_json::from_str::<Typed>(r#"{"name":"a","offset":-9223372036854775808}"#)
            .unwrap_err()
            .to_string(),
        "invalid value: integer `-9223372036854775808`, expected i16 at line 1 column 41"
    );
    assert_eq!(
        error(r#"{"name":"a","count":"1"}"#),
        (
            "count".into(),
            "invalid type: string \"1\", expected u8".into()
        )
    );
    assert_eq!(
        error(r#"{"name":"a","flag":null}"#),
        (
            "flag".into(),
            "invalid type: null, expected a boolean".into()
        )
    );
    assert_eq!(
        error(r#"{"name":"a","nested":[{"key":"k"},{"key":"k","tags":["t",{}]}]}"#),
        (
            "nested[1].tags[1]".into(),
            "invalid type: object, expected a string".into()
        )
    );
    assert_eq!(
        error(r#"{"name":"a","mode":{"Range":{"low":1,"high":"x"}}}"#),
        (
            "mode.Range.high".into(),
            "invalid type: string \"x\", expected i32".into()
        )
    );
    let (path, reason) = error(r#"{"name":"a","mode":"Slow"}"#);
    assert_eq!(path, "mode");
    assert!(
        reason.starts_with("unknown variant `Slow`, expected one of"),
        "{reason}"
    );
    let (path, reason) = error(r#"{"name":"a","nested":[{"key":"k","color":1}]}"#);
    assert_eq!(path, "nested[0]");
    assert!(reason.starts_with("unknown field `color`"), "{reason}");
    assert_eq!(
        error(r#"{"count":1}"#),
        (".".into(), "missing field `name`".into())
    );
    // Strings in messages are quoted with control characters and non-ASCII escaped.
    assert_eq!(
        error("{\"name\":\"a\",\"count\":\"\\n\\u00e9\\\"\"}").1,
        "invalid type: string \"\\n\\u{e9}\\\"\", expected u8"
    );
}

#[test]
fn syntax_errors_say_where() {
    assert_eq!(
        error("{\"name\":\"a\",\n  \"count\": 1,}"),
        (".".into(), "trailing comma at line 2 column 14".into())
    );
    let (path, reason) = error("{\"name\":\"a\",\"nested\":[{\"key\":\"k\" \"tags\":[]}]}");
    assert_eq!(path, "nested[0]");
    assert_eq!(reason, "expected `,` or `}` at line 1 column 34");
    assert_eq!(
        error("{\"name\":\"a\"} x"),
        (
            ".".into(),
            "trailing characters after the JSON value at line 1 column 14".into()
        )
    );
    assert_eq!(
        error("{\"name\":\"\\uD800\"}").1,
        "lone leading surrogate in \\u escape at line 1 column 16"
    );
    assert_eq!(
        error("{\"name\":\"a\",\"count\":01}").1,
        "expected `,` or `}` at line 1 column 22"
    );
    let mut deep = "[".repeat(200);
    deep.push_str(&"]".repeat(200));
    let err = from_slice::<Value>(deep.as_bytes()).unwrap_err();
    assert_eq!(err.path(), "[0]".repeat(127));
    assert_eq!(
        err.into_reason(),
        "recursion limit exceeded at line 1 column 128"
    );
}

#[test]
fn keys_with_escapes_are_named_unescaped() {
    let err = from_slice::<BTreeMap<String, u8>>(br#"{"a\"b\u0063":300}"#).unwrap_err();
    assert_eq!(err.path(), "a\"bc");
}
