//! Parsing of request data a client controls: query strings, cookies, bearer tokens.
//! Everything here is total: malformed input yields fewer items, never a panic.

/// Decoded `name=value` pairs of a query string, in order; repeated names are kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query(Vec<(String, String)>);

impl Query {
    /// Parses the part of a `:path` after `?` (and before any `#`), form-urlencoded.
    pub fn from_path(path: &str) -> Query {
        let query = path.split_once('?').map_or("", |(_, q)| q);
        let query = query.split_once('#').map_or(query, |(q, _)| q);
        Query(
            form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect(),
        )
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// All pairs, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// Cookies sent by the client (`cookie` headers), in order; values are not unquoted or
/// decoded, as RFC 6265 leaves their encoding to the application.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cookies(Vec<(String, String)>);

impl Cookies {
    /// Parses one or more `cookie` header values (`a=1; b=2`). Pairs without `=` are skipped.
    pub fn parse<'a>(headers: impl IntoIterator<Item = &'a str>) -> Cookies {
        let mut out = Vec::new();
        for header in headers {
            for pair in header.split(';') {
                if let Some((name, value)) = pair.split_once('=') {
                    let name = name.trim();
                    if !name.is_empty() {
                        out.push((name.to_string(), value.trim().to_string()));
                    }
                }
            }
        }
        Cookies(out)
    }

    /// The value of the first cookie called `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// All cookies, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// The token of an `Authorization: Bearer <token>` value (scheme case-insensitive, RFC 6750
/// `b64token` characters only), or `None`.
pub fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim_start();
    let valid = !token.is_empty()
        && token
            .trim_end_matches('=')
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b));
    valid.then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_pairs_are_decoded_and_ordered() {
        let q = Query::from_path("/p?a=1&b=x%20y&a=2&c=%2F+z#frag");
        assert_eq!(q.get("a"), Some("1"));
        assert_eq!(q.get_all("a").collect::<Vec<_>>(), ["1", "2"]);
        assert_eq!(q.get("b"), Some("x y"));
        assert_eq!(q.get("c"), Some("/ z"));
        assert_eq!(Query::from_path("/no-query").iter().count(), 0);
        assert_eq!(Query::from_path("/bad?%zz=%").get("%zz"), Some("%"));
    }

    #[test]
    fn cookies_from_several_headers() {
        let c = Cookies::parse(["a=1; b = 2", "junk; c=x=y;;"]);
        assert_eq!(c.get("a"), Some("1"));
        assert_eq!(c.get("b"), Some("2"));
        assert_eq!(c.get("c"), Some("x=y"));
        assert_eq!(c.iter().count(), 3);
    }

    #[test]
    fn bearer_tokens() {
        assert_eq!(bearer_token("Bearer abc.def-ghi_"), Some("abc.def-ghi_"));
        assert_eq!(bearer_token("bearer  tok=="), Some("tok=="));
        assert_eq!(bearer_token("Basic dXNlcg=="), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Bearer a b"), None);
        assert_eq!(bearer_token("Bearer"), None);
    }
}
