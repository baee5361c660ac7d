//! The `vault-mirror` binary: parses the command line, merges it into
//! [`Settings`](vault_mirror::settings::Settings), runs the command, shows
//! what the core reports, and maps the outcome to an exit code.

// Unit tests may use std::fs, long functions and casts of test numbers.
#![cfg_attr(
    test,
    allow(
        clippy::disallowed_methods,
        clippy::too_many_lines,
        clippy::cast_possible_wrap,
        clippy::cast_sign_loss
    )
)]

mod cli;

fn main() -> std::process::ExitCode {
    return_big_blocks_when_freed();
    cli::main()
}

/// Keeps glibc from hoarding freed memory. glibc raises its mmap threshold
/// each time a big block is freed (up to 32 MiB); after that, hyper's read
/// buffers (up to ~400 kB a connection) and upload parts come from
/// per-thread heaps that keep them once freed. Fixed at glibc's own
/// starting value, every block of 128 KiB or more is mapped on its own and
/// returned when freed: on the 1 GB benchmark, peak RSS at `--jobs 8`
/// went from 41 MB to 24 MB, at `--jobs 64` from 95 MB to 42 MB
/// (`bench/run.sh`, "memory"). A block mapped anew costs a page fault per
/// 4 KiB touched, so what a transfer receives goes into blocks it keeps
/// and takes again (`pipeline/transfer/blocks.rs`), and hyper's own read
/// buffer can often be reused.
fn return_big_blocks_when_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const THRESHOLD: libc::c_int = 128 * 1024;
        // SAFETY: mallopt only sets an allocator tunable, which glibc
        // allows at any time and from any thread; it touches no memory of
        // ours. Its answer (1 applied, 0 refused) changes nothing here.
        #[allow(unsafe_code)]
        let _applied = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, THRESHOLD) };
    }
}
