//! # vidkeep
//!
//! A daemon that turns a folder of prompt files into a safely archived, searchable library of
//! AI-generated videos made through the BigModel (Zhipu) asynchronous video API.
//!
//! # Data flow
//!
//! ```text
//!  inbox/            watch        spec          catalog            jobs                api
//!  a.json  ──────▶  complete? ─▶ parse +  ───▶  job row   ───▶  engine: queued ───▶ POST /videos/generations
//!  b.toml           (quiet or    validate       (queued)        submitting ─ recorded before the POST
//!  c.txt            renamed in)     │                           submitted  ◀─── GET /async-result/{id}
//!                                   └─▶ failed/ + report         │ SUCCESS
//!                                                                ▼
//!                     archive: stream URL ─▶ SHA-256 on the way ─▶ store (object_store, atomic,
//!                              fsynced on the local store) ─▶ probe: MP4 as the model promised?
//!                                                                ▼
//!                     catalog: assets recorded after the object is stored ─▶ archived
//!                     spec file ─▶ done/ (or failed/) with `<name>.report.json`
//! ```
//!
//! Modules are declared in the order data moves through them. Every state change is written to
//! the catalogue *before* the side effect it announces, so a crash at any point leaves a state
//! that [`jobs::reconcile`] can repair without paying for a video twice.

pub mod alarms;
pub mod api;
pub mod archive;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod domain;
#[doc(hidden)]
pub mod fuzzing;
pub mod jobs;
pub mod money;
pub mod ops;
pub mod probe;
pub mod report;
pub mod secret;
pub mod sim;
pub mod spec;
pub mod store;
pub mod telemetry;
pub mod time;
pub mod watch;
pub mod web;
