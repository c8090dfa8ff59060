//! The web console: pages in Vietnamese for the clerks and leaders who act
//! on the ratio (README, "Web console"). Server-rendered (askama templates
//! in `templates/`), no script, no asset from another host; each page reads
//! the same typed answers as the JSON API and takes the same query
//! parameters, so a page URL and an API URL can be swapped.

// A handler's early answer is a `Response` (a problem page), made once per
// request: boxing it would buy nothing.
#![allow(clippy::result_large_err)]

mod alerts;
mod chart;
mod documents;
mod export;
mod overview;
mod report;
mod sources;

use askama::Template;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::api::AppState;

/// What every page of the console shows around its content.
pub(crate) struct Head {
    /// The page's own title (the `<title>` adds the agency).
    pub(crate) title: String,
    pub(crate) agency: String,
    pub(crate) code: String,
    /// Which entry of the menu is the current page.
    pub(crate) nav: &'static str,
    pub(crate) version: &'static str,
}

impl Head {
    fn new(s: &AppState, nav: &'static str, title: impl Into<String>) -> Head {
        Head {
            title: title.into(),
            agency: s.config.agency.name.clone(),
            code: s.config.agency.code.clone(),
            nav,
            version: env!("CARGO_PKG_VERSION"),
        }
    }
}

/// A page that cannot be shown: the reason, in a page of the console.
#[derive(Template)]
#[template(path = "problem.html", config = "src/console/askama.toml")]
struct Problem {
    head: Head,
    message: String,
}

/// Renders a page, or says why not.
fn render(t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("page not rendered: {e}\n"),
        )
            .into_response(),
    }
}

/// A problem page with `status` (a bad query, a store not served).
fn problem(s: &AppState, status: StatusCode, message: String) -> Response {
    let mut response = render(&Problem {
        head: Head::new(s, "", "Không hiển thị được"),
        message,
    });
    *response.status_mut() = status;
    response
}

/// The parameters of a page (the API's names and rules), or a 400 problem
/// page naming the one refused. An empty value means "any": the forms send
/// every field, and a select left on "Mọi đơn vị" must not ask, as the
/// API's `unit=` does, for the documents without a unit.
fn params<T: serde::de::DeserializeOwned>(
    s: &AppState,
    uri: &axum::http::Uri,
) -> Result<T, Response> {
    let given = uri.query().unwrap_or("");
    let pairs: Vec<(String, String)> = form_urlencoded::parse(given.as_bytes())
        .into_owned()
        .filter(|(_, v)| !v.is_empty())
        .collect();
    let kept: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let uri: axum::http::Uri = format!("/?{}", query(&kept))
        .parse()
        .map_err(|_| problem(s, StatusCode::BAD_REQUEST, "Tham số không hợp lệ.".into()))?;
    crate::api::query::parse(&uri).map_err(|e| {
        problem(
            s,
            StatusCode::BAD_REQUEST,
            format!("Tham số không hợp lệ: {e}"),
        )
    })
}

/// The stylesheet, served by the daemon: agency networks are often offline.
async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("static/console.css"),
    )
        .into_response()
}

/// The tab's icon (served here, so the browser asks nothing elsewhere).
async fn favicon() -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "max-age=86400"),
        ],
        include_str!("static/favicon.svg"),
    )
        .into_response()
}

/// What a page may load: only this server's stylesheet; no script, no frame.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Middleware: the security headers of every console answer.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// Middleware: no page from a store found damaged (the run is ending).
async fn refuse_if_damaged(
    axum::extract::State(s): axum::extract::State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    match s.shared.health.damage() {
        Some(what) => problem(
            &s,
            StatusCode::SERVICE_UNAVAILABLE,
            format!("Kho dữ liệu bị hỏng ({what}); không hiển thị số liệu nào từ kho này. Dịch vụ sẽ dựng lại kho từ nhật ký."),
        ),
        None => next.run(req).await,
    }
}

/// The console's pages.
pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(overview::page))
        .route("/report", get(report::page))
        .route("/report.csv", get(export::csv))
        .route("/report.xlsx", get(export::xlsx))
        .route("/documents", get(documents::list))
        .route("/documents/{direction}/{doc_id}", get(documents::one))
        .route("/sources", get(sources::page))
        .route("/alerts", get(alerts::page))
        .route("/static/console.css", get(stylesheet))
        .route("/static/favicon.svg", get(favicon))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            refuse_if_damaged,
        ))
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(state)
}

/// A query string rebuilt from pairs (empty values left out), for links
/// that keep a page's filter.
fn query(pairs: &[(&str, &str)]) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        if !v.is_empty() {
            out.append_pair(k, v);
        }
    }
    out.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_keep_only_the_filters_given_and_encode_them() {
        assert_eq!(
            query(&[("class", "paper"), ("unit", ""), ("q", "Quyết định 12/QĐ")]),
            "class=paper&q=Quy%E1%BA%BFt+%C4%91%E1%BB%8Bnh+12%2FQ%C4%90"
        );
        assert_eq!(query(&[("unit", "")]), "");
    }
}
