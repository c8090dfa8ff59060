//! HTTP feed sources (README "HTTP feed sources"): a thread per source polls `GET {url}` then
//! `GET {url}?cursor={next_cursor}`, turns each page into one batch that carries
//! the next cursor (committed with the page's effects), and backs off on faults.
//! It follows redirects itself so that credentials never leave the configured
//! origin, and shows every URL through [`redact_url`].

mod client;
mod fault;
mod metrics;
mod page;
#[cfg(test)]
mod tests;

use std::time::{Duration, Instant};

use chrono::Utc;
use tracing::{debug, error, info, warn};

pub(crate) use client::Feed;
pub(crate) use fault::{retry_delay, FaultKind};
pub(crate) use metrics::FeedMetrics;
pub(crate) use page::{plan, Page};

use super::{Item, Rejected, SourceBatch, SourceContext};
use crate::config::{redact_url, FeedInput};
use crate::parse::{RecordFormat, RecordParser};
use crate::store::FeedPos;
use fault::Jitter;

/// Turns the new events of a page into items; invalid ones keep their position.
fn to_items(parser: &RecordParser, pos: &FeedPos, page: &Page, first: usize) -> Vec<Item> {
    let label = format!("cursor={}", pos.cursor.as_deref().unwrap_or(""));
    page.events
        .iter()
        .enumerate()
        .skip(first)
        .map(|(index, event)| {
            let text = event.to_string();
            let parsed = if event.is_object() {
                parser.parse(&text, None)
            } else {
                Err("event is not a JSON object".to_string())
            };
            match parsed {
                Ok(ev) => Item::Event(ev),
                Err(reason) => Item::Invalid(Rejected {
                    file: label.clone(),
                    line: index as u64,
                    reason,
                    raw: text,
                }),
            }
        })
        .collect()
}

/// Runs one HTTP feed source until `ctx.stop` fires.
pub(super) fn run(ctx: &SourceContext, input: &FeedInput) {
    let handle = &ctx.handle;
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            error!(source = %handle.config.name, error = %e, "cannot start the HTTP feed's runtime; source stopped");
            handle.progress().up = false;
            return;
        }
    };
    rt.block_on(poll(ctx, input));
}

/// Sleeps `d` unless cancelled first; false when cancelled.
async fn pause(d: Duration, cancel: &tokio_util::sync::CancellationToken) -> bool {
    tokio::select! {
        _ = cancel.cancelled() => false,
        _ = tokio::time::sleep(d) => true,
    }
}

async fn poll(ctx: &SourceContext, input: &FeedInput) {
    let (index, handle, queue, cancel) = (ctx.index, &*ctx.handle, &*ctx.queue, &ctx.stop);
    let (cfg, http) = (&handle.config, &input.http);
    let parser = RecordParser::new(&handle.parse_settings(
        RecordFormat::Jsonl,
        &input.mapping,
        ctx.timezone,
    ));
    let mut pos = handle.committed_state().feed;
    info!(source = %cfg.name, url = %redact_url(&http.url), cursor = pos.cursor.as_deref().unwrap_or(""), skip = pos.skip, "polling HTTP feed");
    if http.allow_insecure_http && http.url.starts_with("http:") && http.sends_secrets() {
        warn!(source = %cfg.name, "credentials are sent over plain http (allow_insecure_http = true)");
    }
    let mut feed: Option<Feed> = None;
    let mut jitter = Jitter::new(index);
    let mut seq = 0u64;
    let mut failures = 0u32;
    let mut failing: Option<FaultKind> = None;
    while !cancel.is_cancelled() {
        let started = Instant::now();
        let result = match &feed {
            Some(f) => Ok(f),
            None => Feed::new(http).map(|f| &*feed.insert(f)),
        };
        let result = match result {
            Err(fault) => Err(fault),
            Ok(f) => tokio::select! {
                _ = cancel.cancelled() => return,
                r = f.fetch(pos.cursor.as_deref()) => r,
            },
        };
        if let Some(m) = &handle.feed_metrics {
            m.poll_seconds.observe(started.elapsed().as_secs_f64());
        }
        let page = match result {
            Ok(page) => page,
            Err(fault) => {
                if let Some(m) = &handle.feed_metrics {
                    m.errors.with_label_values(&[fault.kind.as_str()]).inc();
                }
                {
                    let mut p = handle.progress();
                    p.up = false;
                    p.idle_after = None;
                    p.last_error = Some((fault.message.clone(), Utc::now().timestamp()));
                    p.last_error_kind = Some(fault.kind.as_str());
                }
                let delay = retry_delay(failures, jitter.next(), fault.retry_after);
                if failing != Some(fault.kind) {
                    warn!(source = %cfg.name, kind = fault.kind.as_str(), error = %fault.message,
                        retry_in_ms = delay.as_millis() as u64,
                        "HTTP feed poll failed; cursor not advanced, retrying with backoff");
                    failing = Some(fault.kind);
                } else {
                    debug!(source = %cfg.name, kind = fault.kind.as_str(), error = %fault.message,
                        retry_in_ms = delay.as_millis() as u64, "HTTP feed still failing");
                }
                failures = failures.saturating_add(1);
                if !pause(delay, cancel).await {
                    return;
                }
                continue;
            }
        };
        if failing.take().is_some() {
            info!(source = %cfg.name, failed_polls = failures, "HTTP feed reachable again; polling resumed");
        }
        failures = 0;
        handle.progress().up = true;
        let plan = plan(&pos, &page);
        let items = to_items(&parser, &pos, &page, plan.first);
        if !items.is_empty() || plan.next != pos {
            seq += 1;
            {
                let mut p = handle.progress();
                p.sent_seq = seq;
                p.idle_after = None;
            }
            let batch = SourceBatch {
                source: index,
                seq,
                items,
                files: Vec::new(),
                retired: Vec::new(),
                feed: Some(plan.next.clone()),
            };
            if !queue.push(batch, || cancel.is_cancelled()) {
                return;
            }
            pos = plan.next;
        }
        if !plan.more {
            handle.progress().idle_after = Some(seq);
            if !pause(cfg.poll_interval, cancel).await {
                return;
            }
        }
    }
}
