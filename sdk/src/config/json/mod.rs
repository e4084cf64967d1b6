//! A strict RFC 8259 JSON reader that drives serde directly, built for module size.
//!
//! serde_json plus serde_path_to_error cost a plugin about 60 KB of Wasm: a general
//! parser, float *formatting* (only ever used to print `Unexpected::Float` in an error) and a
//! tracking wrapper instantiated once per config type. This reader parses straight into the
//! visitor, records the field path while an error unwinds (so nothing is duplicated per
//! type), and prints errors without float formatting or Unicode tables.
//!
//! What it accepts is exactly JSON: no comments, trailing commas, leading zeros, `NaN`,
//! lone surrogates or control characters in strings; the input must be UTF-8; nesting is
//! limited to 127 arrays/objects, like serde_json. The tests compare it with serde_json.

use serde::de::{self, DeserializeOwned, Expected, Unexpected};
use std::fmt::{self, Write as _};

mod access;

/// The newtype name under which [`RawJson`](crate::config::RawJson) asks this reader for the
/// text of a value instead of the value.
pub(crate) const RAW_JSON: &str = "$weir::config::RawJson";

/// Deepest nesting accepted; the same limit as serde_json (it fails at the 128th level).
const MAX_DEPTH: u32 = 127;

/// Parses a whole JSON document into `T`; only whitespace may follow the value.
pub(crate) fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    let mut de = Deserializer::new(bytes)?;
    let value = T::deserialize(&mut de)?;
    de.finish()?;
    Ok(value)
}

/// Why a document was rejected, and where: the field path is collected while the error
/// travels out of nested arrays and objects.
#[derive(Debug)]
pub(crate) struct Error {
    reason: String,
    /// Innermost segment first.
    path: Vec<Segment>,
}

#[derive(Debug)]
enum Segment {
    Key(String),
    Index(usize),
}

impl Error {
    fn new(reason: String) -> Self {
        Error {
            reason,
            path: Vec::new(),
        }
    }

    fn within(mut self, segment: Segment) -> Self {
        self.path.push(segment);
        self
    }

    /// `rules[2].name`, or `.` for the document itself (serde_path_to_error's notation).
    pub(crate) fn path(&self) -> String {
        let mut out = String::new();
        for segment in self.path.iter().rev() {
            match segment {
                Segment::Key(key) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(key);
                }
                Segment::Index(index) => {
                    let _ = write!(out, "[{index}]");
                }
            }
        }
        if out.is_empty() {
            out.push('.');
        }
        out
    }

    /// What was wrong, without the path.
    pub(crate) fn into_reason(self) -> String {
        self.reason
    }

    /// `invalid type: <found>, expected <what the visitor wanted>`, written without
    /// `Unexpected`'s `Display` (which formats floats).
    fn mismatch(what: &str, found: Unexpected<'_>, expected: &dyn Expected) -> Self {
        let mut reason = String::from(what);
        reason.push_str(": ");
        match found {
            Unexpected::Bool(b) => {
                let _ = write!(reason, "boolean `{b}`");
            }
            Unexpected::Unsigned(n) => {
                let _ = write!(reason, "integer `{n}`");
            }
            // Through u64's formatting: one integer formatter in the module, not two.
            Unexpected::Signed(n) => {
                let sign = if n < 0 { "-" } else { "" };
                let _ = write!(reason, "integer `{sign}{}`", n.unsigned_abs());
            }
            Unexpected::Float(_) => reason.push_str("floating point number"),
            Unexpected::Char(c) => {
                reason.push_str("character ");
                super::push_quoted(&mut reason, c.encode_utf8(&mut [0; 4]), '`');
            }
            Unexpected::Str(s) => {
                reason.push_str("string ");
                super::push_quoted(&mut reason, s, '"');
            }
            Unexpected::Bytes(_) => reason.push_str("byte array"),
            Unexpected::Unit => reason.push_str("null"),
            Unexpected::Option => reason.push_str("optional value"),
            Unexpected::NewtypeStruct => reason.push_str("newtype struct"),
            Unexpected::Seq => reason.push_str("array"),
            Unexpected::Map => reason.push_str("object"),
            Unexpected::Enum => reason.push_str("enum"),
            Unexpected::UnitVariant => reason.push_str("unit variant"),
            Unexpected::NewtypeVariant => reason.push_str("newtype variant"),
            Unexpected::TupleVariant => reason.push_str("tuple variant"),
            Unexpected::StructVariant => reason.push_str("struct variant"),
            Unexpected::Other(other) => reason.push_str(other),
        }
        let _ = write!(reason, ", expected {expected}");
        Error::new(reason)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at {}: {}", self.path(), self.reason)
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error::new(msg.to_string())
    }

    fn invalid_type(found: Unexpected<'_>, expected: &dyn Expected) -> Self {
        Error::mismatch("invalid type", found, expected)
    }

    fn invalid_value(found: Unexpected<'_>, expected: &dyn Expected) -> Self {
        Error::mismatch("invalid value", found, expected)
    }
}

/// `msg` at the end of `before` (line and column count from 1, in bytes).
fn at_position(msg: &str, before: &[u8]) -> Error {
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = before.len()
        - before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1)
        + 1;
    Error::new(format!("{msg} at line {line} column {column}"))
}

/// One JSON token as the visitor sees it. Parsing it is not generic; only the dispatch to
/// a visitor is, which keeps the per-type code small.
enum Event<'de> {
    Null,
    Bool(bool),
    U64(u64),
    I64(i64),
    F64(f64),
    /// A number that needs float parsing; parsed only for visitors that may take floats.
    Float(&'de str),
    /// A string: borrowed from the input when it had no escapes, else in `scratch`.
    Str(Option<&'de str>),
    ArrayStart,
    ObjectStart,
}

impl Event<'_> {
    fn unexpected(&self) -> Unexpected<'_> {
        match *self {
            Event::Null => Unexpected::Unit,
            Event::Bool(b) => Unexpected::Bool(b),
            Event::U64(n) => Unexpected::Unsigned(n),
            Event::I64(n) => Unexpected::Signed(n),
            Event::F64(n) => Unexpected::Float(n),
            // The value is never printed (see `Error::mismatch`), so it is not parsed.
            Event::Float(_) => Unexpected::Float(0.0),
            Event::Str(Some(s)) => Unexpected::Str(s),
            Event::Str(None) => Unexpected::Other("string"),
            Event::ArrayStart => Unexpected::Seq,
            Event::ObjectStart => Unexpected::Map,
        }
    }
}

/// The reader: a position in validated UTF-8 input, the nesting depth and a buffer for
/// strings with escapes.
pub(crate) struct Deserializer<'de> {
    text: &'de str,
    pos: usize,
    depth: u32,
    scratch: String,
}

impl<'de> Deserializer<'de> {
    fn new(bytes: &'de [u8]) -> Result<Self, Error> {
        match std::str::from_utf8(bytes) {
            Ok(text) => Ok(Deserializer {
                text,
                pos: 0,
                depth: 0,
                scratch: String::new(),
            }),
            Err(err) => Err(at_position("invalid UTF-8", &bytes[..err.valid_up_to()])),
        }
    }

    /// The unread input.
    fn rest(&self) -> &'de [u8] {
        self.text.as_bytes().get(self.pos..).unwrap_or_default()
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    /// A syntax error at the current position.
    fn syntax(&self, msg: &str) -> Error {
        at_position(
            msg,
            self.text.as_bytes().get(..self.pos).unwrap_or_default(),
        )
    }

    fn finish(&mut self) -> Result<(), Error> {
        self.skip_whitespace();
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(self.syntax("trailing characters after the JSON value")),
        }
    }

    fn next_event(&mut self) -> Result<Event<'de>, Error> {
        self.skip_whitespace();
        let Some(b) = self.peek() else {
            return Err(self.syntax("EOF while parsing a value"));
        };
        match b {
            b'"' => {
                self.pos += 1;
                Ok(Event::Str(self.string()?))
            }
            b'[' | b'{' => {
                if self.depth >= MAX_DEPTH {
                    return Err(self.syntax("recursion limit exceeded"));
                }
                self.depth += 1;
                self.pos += 1;
                Ok(if b == b'[' {
                    Event::ArrayStart
                } else {
                    Event::ObjectStart
                })
            }
            b'-' | b'0'..=b'9' => self.number(),
            b't' => self.literal("true", Event::Bool(true)),
            b'f' => self.literal("false", Event::Bool(false)),
            b'n' => self.literal("null", Event::Null),
            _ => Err(self.syntax("expected value")),
        }
    }

    fn literal(&mut self, word: &str, event: Event<'de>) -> Result<Event<'de>, Error> {
        if self.rest().starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(event)
        } else {
            Err(self.syntax("expected value"))
        }
    }

    fn digits(&mut self) -> Result<(), Error> {
        if !matches!(self.peek(), Some(b'0'..=b'9')) {
            return Err(self.syntax("invalid number"));
        }
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        Ok(())
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`. Integers become `u64`/`i64` when
    /// they fit and `-0` is `-0.0`, as in serde_json; everything else is checked here but
    /// parsed (by core, correctly rounded) only when a visitor may take a float: core's
    /// float parser is 18 KB of Wasm that most configurations never need.
    fn number(&mut self) -> Result<Event<'de>, Error> {
        let start = self.pos;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.pos += 1;
        }
        let int_start = self.pos;
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits()?,
            _ => return Err(self.syntax("invalid number")),
        }
        let int_end = self.pos;
        let mut integer = true;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            self.digits()?;
            integer = false;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            self.digits()?;
            integer = false;
        }
        if integer {
            let mut value: u64 = 0;
            let mut fits = true;
            for &d in self
                .text
                .as_bytes()
                .get(int_start..int_end)
                .unwrap_or_default()
            {
                match value
                    .checked_mul(10)
                    .and_then(|v| v.checked_add(u64::from(d - b'0')))
                {
                    Some(v) => value = v,
                    None => fits = false,
                }
            }
            match (fits, negative) {
                (true, false) => return Ok(Event::U64(value)),
                (true, true) if value == 0 => return Ok(Event::F64(-0.0)),
                (true, true) if value <= 1 << 63 => {
                    return Ok(Event::I64((value as i64).wrapping_neg()))
                }
                _ => {}
            }
        }
        Ok(Event::Float(
            self.text.get(start..self.pos).unwrap_or_default(),
        ))
    }

    /// Parses a number that [`Self::number`] accepted; out-of-range values are refused
    /// like serde_json does (it never produces infinities).
    fn float(&self, text: &str) -> Result<f64, Error> {
        match text.parse::<f64>() {
            Ok(value) if value.is_finite() => Ok(value),
            _ => Err(self.syntax("number out of range")),
        }
    }

    /// Reads a string after its opening quote: borrowed when it has no escapes, otherwise
    /// unescaped into `scratch` (`None`).
    fn string(&mut self) -> Result<Option<&'de str>, Error> {
        let text = self.text;
        let mut run = self.pos;
        let mut escaped = false;
        loop {
            let Some(b) = self.peek() else {
                return Err(self.syntax("EOF while parsing a string"));
            };
            match b {
                b'"' => {
                    // Quotes and backslashes are ASCII, so these are character boundaries.
                    let tail = text.get(run..self.pos).unwrap_or_default();
                    self.pos += 1;
                    if !escaped {
                        return Ok(Some(tail));
                    }
                    self.scratch.push_str(tail);
                    return Ok(None);
                }
                b'\\' => {
                    if !escaped {
                        self.scratch.clear();
                        escaped = true;
                    }
                    self.scratch
                        .push_str(text.get(run..self.pos).unwrap_or_default());
                    self.pos += 1;
                    self.escape()?;
                    run = self.pos;
                }
                0..=0x1f => return Err(self.syntax("control character in string (escape it)")),
                _ => self.pos += 1,
            }
        }
    }

    /// One escape after its backslash, appended to `scratch`.
    fn escape(&mut self) -> Result<(), Error> {
        let Some(b) = self.peek() else {
            return Err(self.syntax("EOF while parsing a string"));
        };
        self.pos += 1;
        let c = match b {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let first = self.hex4()?;
                let code = match first {
                    0xD800..=0xDBFF => {
                        if !self.rest().starts_with(b"\\u") {
                            return Err(self.syntax("lone leading surrogate in \\u escape"));
                        }
                        self.pos += 2;
                        let second = self.hex4()?;
                        if !(0xDC00..=0xDFFF).contains(&second) {
                            return Err(self.syntax("lone leading surrogate in \\u escape"));
                        }
                        0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
                    }
                    0xDC00..=0xDFFF => {
                        return Err(self.syntax("lone trailing surrogate in \\u escape"))
                    }
                    other => other,
                };
                char::from_u32(code).ok_or_else(|| self.syntax("invalid \\u escape"))?
            }
            _ => {
                self.pos -= 1;
                return Err(self.syntax("invalid escape"));
            }
        };
        self.scratch.push(c);
        Ok(())
    }

    fn hex4(&mut self) -> Result<u32, Error> {
        let mut code = 0;
        for _ in 0..4 {
            let digit = self.peek().and_then(|b| char::from(b).to_digit(16));
            let Some(digit) = digit else {
                return Err(self.syntax("invalid \\u escape"));
            };
            code = code * 16 + digit;
            self.pos += 1;
        }
        Ok(code)
    }

    /// Before an element or entry: `false` at the closing bracket (left unread), else
    /// consumes the separating comma.
    fn has_next(&mut self, close: u8, first: &mut bool) -> Result<bool, Error> {
        self.skip_whitespace();
        match self.peek() {
            Some(b) if b == close => Ok(false),
            None => Err(self.syntax(if close == b']' {
                "EOF while parsing an array"
            } else {
                "EOF while parsing an object"
            })),
            Some(_) if *first => {
                *first = false;
                Ok(true)
            }
            Some(b',') => {
                self.pos += 1;
                self.skip_whitespace();
                if self.peek() == Some(close) {
                    return Err(self.syntax("trailing comma"));
                }
                Ok(true)
            }
            Some(_) => Err(self.syntax(if close == b']' {
                "expected `,` or `]`"
            } else {
                "expected `,` or `}`"
            })),
        }
    }

    /// Reads past one value, checking that it is JSON, without a visitor: one copy of this
    /// code, where `IgnoredAny` would be a visitor instantiated for every container.
    pub(crate) fn skip_value(&mut self) -> Result<(), Error> {
        match self.next_event()? {
            Event::ArrayStart => {
                let mut first = true;
                while self.has_next(b']', &mut first)? {
                    self.skip_value()?;
                }
                self.close(b']')
            }
            Event::ObjectStart => {
                let mut first = true;
                while self.has_next(b'}', &mut first)? {
                    self.key()?;
                    self.skip_value()?;
                }
                self.close(b'}')
            }
            _ => Ok(()),
        }
    }

    /// After the visitor is done with an array or object: its closing bracket must follow.
    fn close(&mut self, close: u8) -> Result<(), Error> {
        self.skip_whitespace();
        if self.peek() == Some(close) {
            self.pos += 1;
            self.depth -= 1;
            return Ok(());
        }
        Err(self.syntax(if close == b']' {
            "more elements than expected in array"
        } else {
            "more entries than expected in object"
        }))
    }

    /// An object key at the current position (after whitespace), then its colon.
    fn key(&mut self) -> Result<Option<&'de str>, Error> {
        if self.peek() != Some(b'"') {
            return Err(self.syntax("expected a string key"));
        }
        self.pos += 1;
        let key = self.string()?;
        self.skip_whitespace();
        if self.peek() != Some(b':') {
            return Err(self.syntax("expected `:`"));
        }
        self.pos += 1;
        Ok(key)
    }

    /// The key that starts at `pos`, read again to name it in an error path.
    fn key_at(&mut self, pos: usize) -> String {
        let saved = self.pos;
        self.pos = pos + 1;
        let key = match self.string() {
            Ok(Some(key)) => key.to_owned(),
            Ok(None) => self.scratch.clone(),
            Err(_) => String::from("?"),
        };
        self.pos = saved;
        key
    }
}
