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
    cli::main()
}
