//! The `vidkeep` binary: parses the command line and hands it to [`vidkeep::cli::run`].

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = vidkeep::cli::Cli::parse();
    if cli.command.prints_to_a_pipe() {
        // `vidkeep jobs --json | head` must end quietly when `head` has read enough, as every
        // Unix tool does, not panic in println!. Rust ignores SIGPIPE; a printing command takes
        // the default back. The daemon and the servers keep ignoring it (their sockets report
        // EPIPE as an error to handle).
        // SAFETY: called before any thread is started; SIG_DFL is a valid disposition.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    vidkeep::cli::run(cli)
}
