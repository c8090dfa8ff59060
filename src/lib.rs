//! docflow measures how many documents a Vietnamese state agency exchanges in
//! electronic form with valid digital signatures (Decision 534/QĐ-TTg).
//!
//! Data flows through the modules in this order:
//! - [`sources`]: file tailing (glob, rotation, copy-truncate), HTTP feeds and edXML
//!   directories, one thread per source, all started by [`sources::run`];
//! - [`parse`]: JSON Lines / CSV records, edXML messages, field mapping, aliases, time formats → events;
//! - [`model`]: the domain vocabulary (pure) — directions, channels, events, documents and their class;
//! - [`ingest`]: the single writer — dedup, merge, per-day count changes;
//! - [`store`]: sled, the only module that knows key layouts; atomic commits;
//! - [`aggregate`], [`report`], [`metrics`], [`api`]: what users read;
//! - [`alerts`]: alert rules, their state and the mail outbox;
//! - [`config`], [`daemon`], [`cli`]: configuration, wiring and commands (the
//!   demo feed generator belongs to the `docflowd` binary, not to this library);
//! - [`rebuild`]: a new store re-read from the sources; backups are [`store::snapshot`];
//! - [`server`], [`guard`], [`web`]: serving HTTP with limits, the Host check,
//!   TLS and basic auth; [`admin`]: import and export, only for administrators
//!   (local socket, or TLS with an admin user);
//! - [`service`], [`reload`]: systemd notify and watchdog, config reload on SIGHUP.

pub mod admin;
pub mod aggregate;
pub mod alerts;
pub mod api;
pub mod cli;
pub mod config;
pub mod daemon;
mod errors;
pub mod guard;
pub mod ingest;
pub mod metrics;
pub mod model;
pub mod parse;
pub mod rebuild;
pub mod reload;
pub mod report;
pub mod server;
pub mod service;
pub mod sources;
pub mod state;
pub mod store;
#[cfg(test)]
mod test_alloc;
pub mod web;
