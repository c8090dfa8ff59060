//! The HTTP client of one feed: requests with headers and credentials sent
//! only to the configured origin, redirects followed by hand (never down to
//! plain http), bodies capped at `max_response_bytes`, and every failure
//! turned into a [`Fault`] whose message shows URLs redacted.

use std::time::{Duration, Instant};

use chrono::Utc;

use super::fault::{parse_retry_after, Fault, FaultKind};
use super::page::{page_url, parse_page, Page};
use crate::config::{redact_url, HttpAuth, HttpConfig};
use crate::errors::chain;

/// Redirects followed before the request counts as a redirect loop.
const MAX_REDIRECTS: usize = 10;

/// Where a redirect from `from` leads, or why it is not followed: no usable
/// `Location`, a scheme other than http(s), or a step down from https to http.
pub(crate) fn redirect_target(
    from: &reqwest::Url,
    location: Option<&str>,
) -> Result<reqwest::Url, Fault> {
    let Some(location) = location else {
        return Err(Fault::new(
            FaultKind::Redirect,
            format!(
                "redirect without a Location header from {}",
                redact_url(from.as_str())
            ),
        ));
    };
    let to = from.join(location.trim()).map_err(|e| {
        Fault::new(
            FaultKind::Redirect,
            format!(
                "redirect to a bad Location {:?} from {}: {e}",
                redact_url(location),
                redact_url(from.as_str())
            ),
        )
    })?;
    if !matches!(to.scheme(), "http" | "https") {
        return Err(Fault::new(
            FaultKind::Redirect,
            format!(
                "redirect to a {}: URL refused (only http and https are followed), from {}",
                to.scheme(),
                redact_url(from.as_str())
            ),
        ));
    }
    if from.scheme() == "https" && to.scheme() == "http" {
        return Err(Fault::new(
            FaultKind::Redirect,
            format!(
                "redirect from https to plain http refused: the request would cross the \
                 network unencrypted ({} -> {})",
                redact_url(from.as_str()),
                redact_url(to.as_str())
            ),
        ));
    }
    Ok(to)
}

/// The HTTP client of one feed.
pub(crate) struct Feed {
    client: reqwest::Client,
    config: HttpConfig,
    /// The configured origin (scheme, host, port): the only one that gets
    /// `headers` and the credentials.
    origin: reqwest::Url,
    /// `[sources.headers]`.
    headers: reqwest::header::HeaderMap,
}

fn classify(e: reqwest::Error) -> Fault {
    // The URL may carry a secret in its query, and its text must not steer the kind.
    let url = e.url().map(|u| redact_url(u.as_str()));
    let e = e.without_url();
    let causes = chain(&e);
    let lower = causes.to_ascii_lowercase();
    let kind = if e.is_timeout() {
        FaultKind::Timeout
    } else if e.is_redirect() {
        FaultKind::Redirect
    } else if lower.contains("dns error") || lower.contains("lookup address") {
        FaultKind::Dns
    } else if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake")
    {
        FaultKind::Tls
    } else if e.is_body() || e.is_decode() {
        FaultKind::Body
    } else {
        FaultKind::Connect
    };
    let message = match url {
        // reqwest's own shape: "error sending request for url (…): causes".
        Some(url) => {
            let head = e.to_string();
            let causes = causes.strip_prefix(head.as_str()).unwrap_or(&causes);
            format!("{head} for url ({url}){causes}")
        }
        None => causes,
    };
    Fault::new(kind, message)
}

/// A secret file's content without its trailing newline.
fn read_secret(path: &std::path::Path, key: &str) -> Result<String, Fault> {
    std::fs::read_to_string(path)
        .map(|s| s.trim_end_matches(['\n', '\r']).to_string())
        .map_err(|e| {
            Fault::new(
                FaultKind::Credentials,
                format!("cannot read {key} {}: {e}", path.display()),
            )
        })
}

impl Feed {
    pub(crate) fn new(config: &HttpConfig) -> Result<Feed, Fault> {
        let origin = reqwest::Url::parse(&config.url)
            .map_err(|e| Fault::new(FaultKind::HttpStatus, format!("bad URL: {e}")))?;
        let mut accept = reqwest::header::HeaderMap::new();
        accept.insert(
            reqwest::header::ACCEPT,
            reqwest::header::HeaderValue::from_static("application/json"),
        );
        let mut headers = reqwest::header::HeaderMap::new();
        for (name, value) in &config.headers {
            // Validated with the config.
            if let (Ok(n), Ok(v)) = (
                reqwest::header::HeaderName::from_bytes(name.as_bytes()),
                reqwest::header::HeaderValue::from_str(value),
            ) {
                headers.insert(n, v);
            }
        }
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("docflowd/", env!("CARGO_PKG_VERSION")))
            .default_headers(accept)
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            // Followed in `Feed::get`: reqwest would re-send our headers to any host,
            // step down from https to http and send a Referer with the query.
            .redirect(reqwest::redirect::Policy::none())
            .referer(false);
        if let Some(ca) = &config.ca_file {
            let pem = std::fs::read(ca).map_err(|e| {
                Fault::new(
                    FaultKind::Tls,
                    format!("cannot read ca_file {}: {e}", ca.display()),
                )
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                Fault::new(
                    FaultKind::Tls,
                    format!("bad ca_file {}: {}", ca.display(), chain(&e)),
                )
            })?;
            builder = builder.tls_certs_merge(certs);
        }
        let client = builder.build().map_err(|e| {
            Fault::new(
                FaultKind::Tls,
                format!("cannot build HTTP client: {}", chain(&e)),
            )
        })?;
        Ok(Feed {
            client,
            config: config.clone(),
            origin,
            headers,
        })
    }

    /// Adds `[sources.headers]` and the credentials (secret files read now).
    fn with_credentials(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, Fault> {
        let req = req.headers(self.headers.clone());
        Ok(match &self.config.auth {
            HttpAuth::None => req,
            HttpAuth::Bearer { token_file } => {
                req.bearer_auth(read_secret(token_file, "bearer_token_file")?)
            }
            HttpAuth::Basic {
                username,
                password_file,
            } => req.basic_auth(username, Some(read_secret(password_file, "password_file")?)),
        })
    }

    /// GETs `url`, following up to [`MAX_REDIRECTS`] redirects within one
    /// `timeout`; headers and credentials go only to the configured origin.
    async fn get(&self, url: reqwest::Url) -> Result<reqwest::Response, Fault> {
        let deadline = Instant::now() + self.config.timeout;
        let mut url = url;
        let mut redirects = 0;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Fault::new(
                    FaultKind::Timeout,
                    format!(
                        "timed out after {redirects} redirects, at {}",
                        redact_url(url.as_str())
                    ),
                ));
            }
            let mut req = self.client.get(url.clone()).timeout(left);
            if url.origin() == self.origin.origin() {
                req = self.with_credentials(req)?;
            }
            let resp = req.send().await.map_err(classify)?;
            if !matches!(resp.status().as_u16(), 301 | 302 | 303 | 307 | 308) {
                return Ok(resp);
            }
            if redirects == MAX_REDIRECTS {
                return Err(Fault::new(
                    FaultKind::Redirect,
                    format!(
                        "more than {MAX_REDIRECTS} redirects (a redirect loop?), last to {}",
                        redact_url(url.as_str())
                    ),
                ));
            }
            let location = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            url = redirect_target(&url, location.as_deref())?;
            redirects += 1;
        }
    }

    /// Fetches the page at `cursor`; reads at most `max_response_bytes` of body.
    pub(crate) async fn fetch(&self, cursor: Option<&str>) -> Result<Page, Fault> {
        let cfg = &self.config;
        let mut resp = self.get(page_url(cfg, cursor)?).await?;
        let status = resp.status();
        if !status.is_success() {
            let retry_after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, Utc::now()));
            let kind = match status.as_u16() {
                429 => FaultKind::RateLimited,
                401 | 403 => FaultKind::Unauthorized,
                s if s >= 500 => FaultKind::ServerError,
                _ => FaultKind::HttpStatus,
            };
            let mut message = format!("HTTP {status}");
            if let Some(d) = retry_after {
                message.push_str(&format!(" (Retry-After {} s)", d.as_secs()));
            }
            return Err(Fault {
                kind,
                message,
                retry_after,
            });
        }
        let max = cfg.max_response_bytes;
        let too_large = || {
            Fault::new(
                FaultKind::TooLarge,
                format!("response larger than max_response_bytes ({max} bytes)"),
            )
        };
        if resp.content_length().is_some_and(|n| n > max) {
            return Err(too_large());
        }
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| {
            let mut f = classify(e);
            if f.kind == FaultKind::Connect {
                f.kind = FaultKind::Body;
            }
            f
        })? {
            if body.len() as u64 + chunk.len() as u64 > max {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        parse_page(
            &body,
            content_type.as_deref(),
            &cfg.events_pointer,
            &cfg.next_cursor_pointer,
        )
    }
}
