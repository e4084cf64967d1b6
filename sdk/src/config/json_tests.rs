//! The configuration JSON reader against serde_json as the reference: the same documents
//! are accepted and rejected, and accepted ones give the same values.

use super::json::from_slice;
use serde_json::Value;

/// Whether two values are equal, floats within an ulp or so: without its
/// `float_roundtrip` feature serde_json may round the last bit differently from core's
/// correctly rounded parser.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            x == y || ((x - y).abs() <= x.abs().max(y.abs()) * 4.0 * f64::EPSILON)
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((kx, vx), (ky, vy))| kx == ky && same(vx, vy))
        }
        _ => a == b,
    }
}

/// Parses `doc` with both readers and fails unless they agree; returns whether it parsed.
fn agree(doc: &[u8]) -> bool {
    let ours = from_slice::<Value>(doc);
    let reference = serde_json::from_slice::<Value>(doc);
    match (&ours, &reference) {
        (Ok(a), Ok(b)) => assert!(
            same(a, b),
            "{:?}: ours {a:?}, serde_json {b:?}",
            String::from_utf8_lossy(doc)
        ),
        (Err(_), Err(_)) => {}
        _ => panic!(
            "{:?}: ours {:?}, serde_json {:?}",
            String::from_utf8_lossy(doc),
            ours.map_err(|e| e.to_string()),
            reference.map_err(|e| e.to_string())
        ),
    }
    ours.is_ok()
}

const VALID: &[&str] = &[
    "null",
    "true",
    "false",
    "0",
    "-0",
    "-0.0",
    "1",
    "-1",
    "123456789",
    "0.5",
    "-0.5",
    "1e3",
    "1E3",
    "1e+3",
    "1e-3",
    "1.5e10",
    "2.5E-10",
    "0e0",
    "0E+0",
    "-0e-0",
    "123.456e-7",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775808",
    "-9223372036854775809",
    "99999999999999999999999999999999",
    "1e308",
    "1.7976931348623157e308",
    "4.9e-324",
    "1e-400",
    "2.2250738585072011e-308",
    "9007199254740993",
    "0.1",
    "0.30000000000000004",
    "123456789012345678901234567890e-20",
    r#""""#,
    r#""abc""#,
    r#""\"\\\/\b\f\n\r\t""#,
    r#""\u0000""#,
    r#""\u001f""#,
    r#""\u00e9\u4e2d""#,
    r#""\uD83D\uDE00""#,
    r#""\ud83d\ude00""#,
    r#""\uDBFF\uDFFF""#,
    r#""\uD800\uDC00""#,
    "\"é中😀\"",
    "\"\u{7f}\"",
    r#""a\u0041b""#,
    r#""\\u0041""#,
    "[]",
    "[ ]",
    "[1]",
    "[1,2,3]",
    " [ 1 , 2 ] ",
    "[[]]",
    "[[[1]],[2]]",
    "[null,true,false,\"x\",1.5,{}]",
    "{}",
    "{ }",
    r#"{"a":1}"#,
    r#"{"a":1,"b":[1,2],"c":{"d":null}}"#,
    r#"{"":0}"#,
    r#"{"a":1,"a":2}"#,
    r#"{"\u0061":"\n"}"#,
    "\t\r\n {\"a\" \t:\r\n [ ] }\n",
    r#"{"k\"ey":"v"}"#,
    r#"{"😀":"😀"}"#,
];

const INVALID: &[&str] = &[
    "",
    " ",
    "nul",
    "nulll",
    "True",
    "NULL",
    "tru",
    "falsey",
    "undefined",
    "NaN",
    "Infinity",
    "-Infinity",
    "01",
    "-01",
    "00",
    "+1",
    ".5",
    "5.",
    "1.e3",
    "1e",
    "1e+",
    "1e-",
    "-",
    "--1",
    "0x10",
    "1_000",
    "1.5.5",
    "1e309",
    "-1e309",
    "1e99999",
    "123456789e400",
    "\"",
    "\"abc",
    "abc\"",
    "'abc'",
    r#""\x41""#,
    r#""\u12""#,
    r#""\u12G4""#,
    r#""\U0041""#,
    r#""\""#,
    r#""\uD83D""#,
    r#""\uDE00""#,
    r#""\uD83Dx""#,
    r#""\uD83D\u0041""#,
    r#""\uD83D\uD83D""#,
    r#""\uDE00\uD83D""#,
    "\"tab\there\"",
    "\"new\nline\"",
    "\"nul\u{0}\"",
    "\"\u{1f}\"",
    "[",
    "]",
    "[1",
    "[1,",
    "[1,]",
    "[,1]",
    "[1 2]",
    "[1,,2]",
    "[}",
    "[1]]",
    "[1] [2]",
    "{",
    "}",
    "{\"a\"",
    "{\"a\":",
    "{\"a\":1",
    "{\"a\":1,}",
    "{,}",
    "{\"a\" 1}",
    "{a:1}",
    "{'a':1}",
    "{1:1}",
    "{\"a\":1 \"b\":2}",
    "{\"a\":1,,\"b\":2}",
    "{\"a\"::1}",
    "{]",
    "{\"a\":1}}",
    "{} {}",
    "// comment\n{}",
    "{} // comment",
    "/* c */ {}",
    "{\"a\":1 /* c */}",
    "#{}",
    "\u{feff}{}",
    "{}\u{0}",
    "\u{a0}{}",
    "\u{c}{}",
    "{}\u{b}",
    "[1\u{a0}]",
];

#[test]
fn hand_picked_documents_agree_with_serde_json() {
    for doc in VALID {
        assert!(agree(doc.as_bytes()), "should accept {doc:?}");
    }
    for doc in INVALID {
        assert!(!agree(doc.as_bytes()), "should reject {doc:?}");
    }
}

#[test]
fn invalid_utf8_is_rejected_everywhere() {
    for doc in [
        &b"\"\xff\""[..],
        b"\"\xc3\"",
        b"\"\xed\xa0\x80\"",
        b"\"\xc0\x80\"",
        b"{\"\xff\":1}",
        b"[1]\xff",
        b"\xef\xbb\xbf{}",
    ] {
        assert!(!agree(doc), "{doc:?}");
    }
    let err = from_slice::<Value>(b"{\"a\":\n\"\xff\"}").unwrap_err();
    assert_eq!(err.into_reason(), "invalid UTF-8 at line 2 column 2");
}

#[test]
fn nesting_stops_where_serde_json_stops() {
    for depth in [1, 100, 126, 127, 128, 129, 1000, 100_000] {
        let arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let objects = format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth));
        assert_eq!(agree(arrays.as_bytes()), depth <= 127, "arrays {depth}");
        assert_eq!(agree(objects.as_bytes()), depth <= 127, "objects {depth}");
    }
    // Unclosed nesting far past the limit fails cleanly instead of overflowing the stack.
    assert!(!agree("[".repeat(1_000_000).as_bytes()));
}

#[test]
fn every_prefix_and_every_single_byte_change_agree() {
    let doc = br#"{"a": [1, -2.5e3, true, null, "x\u00e9\n\ud83d\ude00"], "b": {"c": {}, "d": []}, "e": "f"}"#;
    for end in 0..=doc.len() {
        agree(&doc[..end]);
    }
    let bytes = b" \t\n\"\\/{}[],:-+.0123456789eEabfnrtu\x00\x1f\x7f\xc3\xa9";
    for at in 0..doc.len() {
        for &b in bytes {
            let mut changed = doc.to_vec();
            changed[at] = b;
            agree(&changed);
            changed.insert(at, b);
            agree(&changed);
        }
        let mut shorter = doc.to_vec();
        shorter.remove(at);
        agree(&shorter);
    }
}

/// A small deterministic generator (xorshift64*): the test is reproducible from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

fn whitespace(rng: &mut Rng, out: &mut String) {
    while rng.below(4) == 0 {
        out.push_str(rng.pick(&[" ", "\t", "\n", "\r", "  "]));
    }
}

fn string(rng: &mut Rng, out: &mut String) {
    out.push('"');
    for _ in 0..rng.below(8) {
        let piece = rng.pick(&[
            "a",
            "Z",
            " ",
            "é",
            "中",
            "😀",
            "\\\"",
            "\\\\",
            "\\/",
            "\\b",
            "\\f",
            "\\n",
            "\\r",
            "\\t",
            "\\u0041",
            "\\u00e9",
            "\\uD83D\\uDE00",
            "\\u0000",
            "\\uffff",
            "'",
            "x-y",
            "\u{7f}",
        ]);
        out.push_str(piece);
    }
    out.push('"');
}

fn number(rng: &mut Rng, out: &mut String) {
    if rng.below(3) == 0 {
        out.push('-');
    }
    match rng.below(4) {
        0 => out.push('0'),
        1 => out.push_str(&(rng.next() >> rng.below(64)).to_string()),
        2 => out.push_str(&rng.next().to_string()),
        _ => out.push_str(&format!(
            "{}{}",
            rng.below(9) + 1,
            rng.next() % 1_000_000_000_000
        )),
    }
    if rng.below(3) == 0 {
        out.push('.');
        out.push_str(&rng.below(1_000_000).to_string());
    }
    if rng.below(3) == 0 {
        out.push_str(rng.pick(&["e", "E", "e+", "e-", "E-"]));
        let limit = if rng.below(8) == 0 { 400 } else { 40 };
        out.push_str(&rng.below(limit).to_string());
    }
}

fn value(rng: &mut Rng, depth: u32, out: &mut String) {
    whitespace(rng, out);
    let kind = if depth > 4 {
        rng.below(5)
    } else {
        rng.below(7)
    };
    match kind {
        0 => out.push_str(rng.pick(&["null", "true", "false"])),
        1 | 2 => number(rng, out),
        3 | 4 => string(rng, out),
        5 => {
            out.push('[');
            for i in 0..rng.below(5) {
                if i > 0 {
                    out.push(',');
                }
                value(rng, depth + 1, out);
            }
            whitespace(rng, out);
            out.push(']');
        }
        _ => {
            out.push('{');
            for i in 0..rng.below(5) {
                if i > 0 {
                    out.push(',');
                }
                whitespace(rng, out);
                string(rng, out);
                whitespace(rng, out);
                out.push(':');
                value(rng, depth + 1, out);
            }
            whitespace(rng, out);
            out.push('}');
        }
    }
    whitespace(rng, out);
}

#[test]
fn random_documents_and_their_mutations_agree() {
    let mut rng = Rng(0x5EED_CAFE);
    let (mut generated_ok, mut accepted, mut rejected) = (0, 0, 0);
    for _ in 0..3000 {
        let mut doc = String::new();
        value(&mut rng, 0, &mut doc);
        // Valid JSON, except that a large exponent can put a number out of range.
        if agree(doc.as_bytes()) {
            generated_ok += 1;
        }
        let mut bytes = doc.into_bytes();
        for _ in 0..=rng.below(3) {
            let at = rng.below(bytes.len() as u64 + 1) as usize;
            let choices = b"{}[]\",:\\ -.0123456789eEtfnu\x01\xff";
            let b = choices[rng.below(choices.len() as u64) as usize];
            match rng.below(3) {
                0 if at < bytes.len() => bytes[at] = b,
                1 if at < bytes.len() => {
                    bytes.remove(at);
                }
                _ => bytes.insert(at, b),
            }
        }
        if agree(&bytes) {
            accepted += 1;
        } else {
            rejected += 1;
        }
    }
    // The mutations must exercise both outcomes for the comparison to mean anything.
    assert!(
        generated_ok > 2700,
        "only {generated_ok} generated documents parsed"
    );
    assert!(
        accepted > 100 && rejected > 1000,
        "accepted {accepted}, rejected {rejected}"
    );
}
