//! Integration tests: the real `docflowd` binary driven through its config
//! files, its input logs, signals and its HTTP API. One test binary.

mod alerts;
mod common;
mod config_check;
mod corpus;
mod csv;
mod documents;
mod prometheus;
mod report_cli;
mod restart;
mod rotation;
mod service;
mod web_tls;
