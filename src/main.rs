//! The `vault-mirror` binary: parses the command line, merges it into
//! [`Settings`](vault_mirror::settings::Settings), runs the command, shows
//! what the core reports, and maps the outcome to an exit code.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
