//! The `vidkeep` binary: parses the command line and hands it to [`vidkeep::cli::run`].

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    return_big_buffers_to_the_system();
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

/// Allocations of 4 MiB and more (S3 multipart parts, 5 MiB at the least) get their own mapping
/// and go back to the system when freed. Left alone, glibc raises that threshold by itself up to
/// 32 MiB once such a block is freed, after which 16 MiB parts come from the heap, and the heap's
/// free space stays in the process: 30 results archived into S3 at once peaked at 177-184 MiB
/// with the moving threshold and 131-135 MiB with it fixed (BENCHMARKS.md). Smaller buffers (the
/// 1 MiB download buffers, reused for a whole download) stay on the heap.
///
/// Fixing that threshold also stops glibc from raising the heap's trim threshold (to twice the
/// mmap threshold), leaving it at 128 KiB: the heap then gave its top back to the system after
/// nearly every SQLite transaction and took it again on the next, and those page faults were a
/// quarter of the CPU of an intake of 10,000 specs (2.1-2.5 s; 1.5-1.7 s with the trim threshold
/// at 8 MiB, BENCHMARKS.md). So it is set to what glibc would have chosen: 8 MiB.
fn return_big_buffers_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: called first thing in main, before any thread exists; both take a byte count
    // within their range (the mmap threshold at most 32 MiB on 64-bit).
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 * 1024 * 1024);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 8 * 1024 * 1024);
    }
}
