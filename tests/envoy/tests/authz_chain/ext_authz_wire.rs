//! The few protobuf fields of Envoy's ext_authz `CheckRequest` and `CheckResponse` the
//! scripted ext_authz servers read and write, encoded by hand (a handful of fields).

fn varint(mut n: u64, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}
fn bytes_field(tag: u64, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    varint(tag << 3 | 2, &mut out);
    varint(bytes.len() as u64, &mut out);
    out.extend_from_slice(bytes);
    out
}
fn int_field(tag: u64, n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    varint(tag << 3, &mut out);
    varint(n, &mut out);
    out
}
fn header(name: &str, value: &str) -> Vec<u8> {
    bytes_field(
        1,
        &[
            bytes_field(1, name.as_bytes()),
            bytes_field(2, value.as_bytes()),
        ]
        .concat(),
    )
}
/// A `CheckResponse` allowing, with `headers` to set and `remove` to remove.
pub fn allow(headers: &[(&str, &str)], remove: &[&str]) -> Vec<u8> {
    let mut ok = Vec::new();
    for (name, value) in headers {
        ok.extend(bytes_field(2, &header(name, value)));
    }
    for name in remove {
        ok.extend(bytes_field(5, name.as_bytes()));
    }
    [bytes_field(1, &[]), bytes_field(3, &ok)].concat()
}
/// A `denied_response`: HTTP status, headers, body.
pub type Denied<'a> = (u64, &'a [(&'a str, &'a str)], &'a str);

/// A `CheckResponse` denying with gRPC `code`, and a `denied_response` when `http` is set.
pub fn deny(code: u64, http: Option<Denied<'_>>) -> Vec<u8> {
    let mut out = bytes_field(1, &int_field(1, code));
    if let Some((status, headers, body)) = http {
        let mut denied = bytes_field(1, &int_field(1, status));
        for (name, value) in headers {
            denied.extend(bytes_field(2, &header(name, value)));
        }
        denied.extend(bytes_field(3, body.as_bytes()));
        out.extend(bytes_field(2, &denied));
    }
    out
}

/// The length-delimited field `tag` of a protobuf message (tests only).
pub fn sub(message: &[u8], tag: u64) -> Vec<Vec<u8>> {
    let (mut at, mut found) = (0, Vec::new());
    let read = |at: &mut usize| {
        let (mut n, mut shift) = (0u64, 0);
        while let Some(b) = message.get(*at) {
            *at += 1;
            n |= u64::from(b & 0x7f) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                break;
            }
        }
        n
    };
    while at < message.len() {
        let key = read(&mut at);
        match key & 7 {
            0 => {
                read(&mut at);
            }
            2 => {
                let len = read(&mut at) as usize;
                if key >> 3 == tag {
                    found.push(message[at..at + len].to_vec());
                }
                at += len;
            }
            _ => panic!("unexpected wire type in {message:?}"),
        }
    }
    found
}
