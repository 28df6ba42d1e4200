//! Integration tests, compiled as one binary: the real daemon against the platform simulator over
//! real HTTP, with a real SQLite catalogue and a real local store in a temp folder.

#![allow(unreachable_pub, missing_docs)]

mod support;
mod web;
mod webui;
mod webzip;

mod alarms;
mod answers;
mod architecture;
mod chaos;
mod cli;
mod config_example;
mod conformance;
mod copy;
mod custody;
mod e2e;
mod faults;
mod fuzzing;
mod hostile;
mod intake;
mod limits;
mod memory;
mod network;
mod postgres;
mod ops;
mod recovery;
mod s3;
mod safety;
mod scale;
mod scale_out;
mod sdk;
mod systemd;
