//! The `vidkeep` binary: parses the command line and hands it to [`vidkeep::cli::run`].

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    vidkeep::cli::run(vidkeep::cli::Cli::parse())
}
