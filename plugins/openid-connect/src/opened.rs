//! Sessions this VM opened before, by their exact sealed value: a browser sends the same
//! session cookie on every request, and opening it (AES-256-GCM in software, then JSON) was
//! most of the plugin's cost per authenticated request. A hit gives what opening the same
//! bytes with the same key and associated data would give, so it is checked against both;
//! the caller still checks the session's end on every request.

use std::cell::RefCell;
use std::collections::HashMap;

use crate::session::Session;

/// Sessions kept per VM (a session is a few KB: ID, access and refresh tokens).
const CAPACITY: usize = 256;

struct Opened {
    key: [u8; 32],
    aad: Vec<u8>,
    session: Session,
}

thread_local! {
    static OPENED: RefCell<HashMap<String, Opened>> = RefCell::new(HashMap::new());
}

/// The session sealed as `sealed` under `key` and `aad`, opened before; or `open`'s result,
/// kept for next time when it opens.
pub fn get_or_open(
    key: &[u8; 32],
    aad: &[u8],
    sealed: &str,
    now: u64,
    open: impl FnOnce() -> Option<Session>,
) -> Option<Session> {
    let hit = OPENED.with(|opened| {
        let opened = opened.borrow();
        let entry = opened.get(sealed)?;
        (entry.key == *key && entry.aad == aad).then(|| entry.session.clone())
    });
    if hit.is_some() {
        return hit;
    }
    let session = open()?;
    OPENED.with(|opened| {
        let mut opened = opened.borrow_mut();
        if opened.len() >= CAPACITY {
            opened.retain(|_, entry| entry.session.session_expires > now);
            if opened.len() >= CAPACITY {
                opened.clear();
            }
        }
        opened.insert(
            sealed.to_owned(),
            Opened {
                key: *key,
                aad: aad.to_vec(),
                session: session.clone(),
            },
        );
    });
    Some(session)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(expires: u64) -> Session {
        Session {
            id_token: "id".into(),
            access_token: None,
            refresh_token: None,
            token_expires: expires,
            session_expires: expires,
        }
    }

    #[test]
    fn a_hit_needs_the_same_key_and_associated_data() {
        let key = [7; 32];
        let opened = get_or_open(&key, b"aad", "sealed-a", 0, || Some(session(100)));
        assert_eq!(opened.map(|s| s.session_expires), Some(100));
        // Same bytes, key and aad: not opened again.
        let again = get_or_open(&key, b"aad", "sealed-a", 0, || panic!("opened twice"));
        assert_eq!(again.map(|s| s.session_expires), Some(100));
        // Another key or other associated data: opened (and refused) for real.
        assert!(get_or_open(&[8; 32], b"aad", "sealed-a", 0, || None).is_none());
        assert!(get_or_open(&key, b"other", "sealed-a", 0, || None).is_none());
        // What failed to open is not kept.
        assert!(get_or_open(&key, b"aad", "sealed-b", 0, || None).is_none());
        assert_eq!(
            get_or_open(&key, b"aad", "sealed-b", 0, || Some(session(5))).map(|s| s.token_expires),
            Some(5)
        );
    }

    #[test]
    fn stays_bounded() {
        let key = [1; 32];
        for i in 0..CAPACITY * 3 {
            get_or_open(&key, b"aad", &format!("s{i}"), 50, || {
                Some(session(10 + (i % 2) as u64 * 100))
            });
        }
        assert!(OPENED.with(|o| o.borrow().len()) <= CAPACITY);
    }
}
