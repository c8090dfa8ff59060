//! What counts as a secret in a feed's URL or headers, and how such a URL is
//! shown (README "HTTP feed sources": no secrets over plain http, redaction).
//! Config validation refuses secrets over plain http by these rules; logs,
//! fault messages and `/api/v1/status` show URLs through [`redact_url`].

/// Parts of query parameter and header names that mark a secret (lowercase).
const SECRET_NAME_PARTS: [&str; 11] = [
    "token",
    "key",
    "secret",
    "password",
    "passwd",
    "pwd",
    "auth",
    "sig",
    "session",
    "credential",
    "cookie",
];

/// Whether a query parameter or header name looks like it carries a secret
/// (`access_token`, `X-API-Key`, `Authorization`…; case-insensitive).
pub(crate) fn is_secret_name(name: &str) -> bool {
    let lower = name.to_lowercase();
    SECRET_NAME_PARTS.iter().any(|part| lower.contains(part))
}

/// `%XX` and `+` decoded, for matching a query parameter's name.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `name=value&…` with the values of secret-looking names replaced.
fn redact_pairs(pairs: &str) -> String {
    pairs
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if is_secret_name(&percent_decode(name)) => {
                format!("{name}=REDACTED")
            }
            _ => pair.to_string(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// A URL as it may be logged or shown: the values of secret-looking query (and
/// fragment) parameters and any user info become `REDACTED`, the rest is kept
/// as written. Works on text that is not a valid URL too.
pub fn redact_url(url: &str) -> String {
    let (before_fragment, fragment) = match url.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (url, None),
    };
    let (base, query) = match before_fragment.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (before_fragment, None),
    };
    let mut out = match base.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find(['/', '\\']).unwrap_or(rest.len());
            match rest[..authority_end].rfind('@') {
                Some(at) => format!("{scheme}://REDACTED{}", &rest[at..]),
                None => base.to_string(),
            }
        }
        None => base.to_string(),
    };
    if let Some(q) = query {
        out.push('?');
        out.push_str(&redact_pairs(q));
    }
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(&redact_pairs(f));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_in_urls_are_redacted_for_display() {
        let cases = [
            ("https://hub.test/feed", "https://hub.test/feed"),
            (
                "https://hub.test/feed?agency=H40&access_token=s3&limit=5",
                "https://hub.test/feed?agency=H40&access_token=REDACTED&limit=5",
            ),
            (
                "https://hub.test/f?API_KEY=1&apikey=2&key=3&Secret=4&password=5&passwd=6&pwd=7",
                "https://hub.test/f?API_KEY=REDACTED&apikey=REDACTED&key=REDACTED&Secret=REDACTED\
                 &password=REDACTED&passwd=REDACTED&pwd=REDACTED",
            ),
            (
                "http://h/f?auth=1&sig=2&signature=3&session_id=4&credential=5&token=6&cursor=7",
                "http://h/f?auth=REDACTED&sig=REDACTED&signature=REDACTED&session_id=REDACTED\
                 &credential=REDACTED&token=REDACTED&cursor=7",
            ),
            (
                "http://h/f?access%5Ftoken=1&x=a+b%26c",
                "http://h/f?access%5Ftoken=REDACTED&x=a+b%26c",
            ),
            ("http://h/f?token&token=", "http://h/f?token&token=REDACTED"),
            (
                "https://user:pw@hub.test:8443/f?q=1",
                "https://REDACTED@hub.test:8443/f?q=1",
            ),
            (
                "https://hub.test/cb#access_token=1&state=x",
                "https://hub.test/cb#access_token=REDACTED&state=x",
            ),
            (
                "not a url ?apikey=1&page=2",
                "not a url ?apikey=REDACTED&page=2",
            ),
            (
                "https://hub.test:99999/f?token=1",
                "https://hub.test:99999/f?token=REDACTED",
            ),
        ];
        for (url, shown) in cases {
            assert_eq!(redact_url(url), shown, "{url}");
        }
    }
}
