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
//! Modules are declared in that order, after the foundations every stage shares, and before
//! what runs the pipeline:
//!
//! - foundations, which depend on nothing else in the crate: [`domain`] (job states, the inbox
//!   layout, hashes, platform facts), [`time`], [`secret`], [`telemetry`];
//! - the settings: [`config`];
//! - the pipeline: [`watch`] → [`spec`] → [`money`] (priced and budgeted before it is recorded)
//!   → [`catalog`] → [`jobs`] → [`api`] → [`archive`] → [`store`] → [`probe`] → [`report`];
//! - running it: [`ops`], [`alarms`], [`web`], [`daemon`], [`cli`] (with the demo);
//! - test support: [`sim`], the platform simulator, and the fuzzing entry points.
//!
//! No two modules depend on each other, directly or through others (`tests/architecture.rs`
//! fails on a cycle). Every state change is written to the catalogue *before* the side effect it
//! announces, so a crash at any point leaves a state that [`jobs::reconcile`] can repair without
//! paying for a video twice.

// Foundations.
pub mod domain;
pub mod time;
pub mod secret;
pub mod telemetry;
// The settings.
pub mod config;
// The pipeline, in the order a spec moves through it.
pub mod watch;
pub mod spec;
pub mod money;
pub mod catalog;
pub mod jobs;
pub mod api;
pub mod archive;
pub mod store;
pub mod probe;
pub mod report;
// Running it.
pub mod ops;
pub mod alarms;
pub mod web;
pub mod daemon;
pub mod cli;
pub use cli::demo;
// Test support.
pub mod sim;
#[doc(hidden)]
pub mod fuzzing;
