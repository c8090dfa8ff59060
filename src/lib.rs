//! docflow measures how many documents a Vietnamese state agency exchanges in
//! electronic form with valid digital signatures (Decision 534/QĐ-TTg).
//!
//! The folder tree is the data flow:
//!
//! ```text
//! sources/   read: file tailing (glob, rotation, copy-truncate), HTTP feeds,
//!            edXML directories; one thread per source
//! parse/     bytes → events: JSON Lines, CSV, edXML, field mapping, aliases, times
//! model/     the domain vocabulary (pure): directions, channels, events,
//!            documents and their class
//! ingest/    the writer: dedup, merge into documents, per-day count changes;
//!            its committer writes each batch while the next is prepared
//! store/     sled, the only module that knows key layouts: atomic commits with
//!            their proof, checks, snapshots, swaps
//! state      the read model: counts, source progress, store health
//! aggregate, report/, metrics/, alerts/   what users read and are told
//! console/   the web pages in Vietnamese (askama templates, SVG chart, xlsx)
//! vi         how numbers, ratios and dates are written in Vietnamese
//! api/, admin/, server, guard, web        serving: reads on the port, admin
//!            actions on a local socket, HTTP limits, Host check, TLS and auth
//! config/, daemon/, cli, rebuild, reload, service   configuration, wiring,
//!            commands, re-reading the logs, SIGHUP, systemd
//! ```
//!
//! The `docflowd` binary (`src/main.rs`) parses arguments and calls this
//! library; the demo feed generator (`src/demo/`) belongs to the binary.

// Module docs link crate-private items: `cargo doc --document-private-items`
// renders those links; the public API's docs stay warning-free.
#![allow(rustdoc::private_intra_doc_links)]

pub(crate) mod admin;
pub(crate) mod aggregate;
pub mod alerts;
pub(crate) mod api;
pub mod cli;
pub mod config;
pub(crate) mod console;
pub mod daemon;
mod errors;
pub(crate) mod guard;
pub(crate) mod ingest;
pub(crate) mod metrics;
pub(crate) mod model;
pub mod parse;
pub mod pdf;
pub mod pdf_check;
pub mod rebuild;
pub(crate) mod reload;
pub mod report;
pub mod server;
pub(crate) mod service;
pub mod sources;
pub(crate) mod state;
pub mod store;
#[cfg(test)]
mod test_alloc;
pub(crate) mod vi;
pub(crate) mod web;
