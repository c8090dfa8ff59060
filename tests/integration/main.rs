//! Integration tests: the real `docflowd` binary driven through its config
//! files, its input logs, signals and its HTTP API. One test binary.

mod alerts;
mod attacks;
mod common;
mod config_check;
mod console;
mod corpus;
mod csv;
mod damage;
mod documents;
mod edxml;
mod http_feed;
mod pdf;
mod pdf_hostile;
mod prometheus;
mod report_cli;
mod restart;
mod rotation;
mod safety;
mod service;
mod web_tls;
