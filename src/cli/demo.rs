//! `demo`: the mirror run against a built-in sample vault (or a sample
//! account of several connections, `--connections N`) on loopback, and
//! what to open afterwards.

use vault_mirror::fake::{FakeServer, sample_account};
use vault_mirror::settings::Settings;
use vault_mirror::store::Store;

use super::args::DemoArgs;
use super::failure::Failure;
use super::mirror::{run_dry, run_watched};
use super::unattended::Watchers;
use super::{logging, settings as cli_settings};

pub async fn run_demo(global: &super::args::GlobalArgs, demo: &DemoArgs) -> Result<i32, Failure> {
    let media = demo.media as usize;
    let (vault, options) = sample_account(media, 4, usize::from(demo.connections), false);
    let images = vault
        .media
        .values()
        .filter(|item| item.media_type == "image")
        .count();
    let connections = options.more_connections.len() + 1;
    let server = FakeServer::start(vault, options).await.map_err(|error| {
        Failure::failed(
            anyhow::Error::new(error).context("cannot start the sample Vault+ server on 127.0.0.1"),
        )
    })?;
    // An agency's demo gets a folder of its own: its layout (one archive
    // per connection) cannot share one with the single-connection demo's.
    let default_out = if demo.connections > 1 {
        "vault-demo-agency"
    } else {
        "vault-demo"
    };
    let mut settings = cli_settings::build(global, Some(&demo.mirror), default_out)?;
    // The demo talks only to its own server, whatever the environment says.
    settings.base_url = vault_mirror::settings::parse_base_url(&server.base_url())?;
    settings.api_key = Some(server.api_key().to_owned().into());
    settings.connection_id = Some(server.connection_id().to_owned());
    // The demo shows the whole archive, gallery included.
    settings.mirror.export = true;
    logging::init(&settings)?;
    let output = settings.output;
    let talk = !output.quiet && !output.json;
    if connections > 1 {
        if talk && !settings.mirror.dry_run {
            eprintln!(
                "{}",
                super::terminal::for_stderr(&format!(
                    "demo: a sample account of {connections} connections, each a Vault+ of {media} media in 4 lists, is serving at {}",
                    server.base_url()
                ))
            );
        }
        // As `--all-connections` would: the account's listing names them.
        let chosen = super::connections::active_connections(&settings).await?;
        let code = if settings.mirror.dry_run {
            super::agency::run(global, &demo.mirror, &settings, chosen, None).await?
        } else {
            // The run is the process's, not one connection's.
            let watchers = Watchers::start(&super::unattended::of_process(&settings), "demo")?;
            super::agency::run(global, &demo.mirror, &settings, chosen, Some(&watchers)).await?
        };
        if talk {
            eprint!(
                "{}",
                super::terminal::for_stderr(&agency_what_to_open(&settings))
            );
        }
        return Ok(code);
    }
    if settings.mirror.dry_run {
        return run_dry(&settings).await;
    }
    if talk {
        eprintln!(
            "{}",
            super::terminal::for_stderr(&format!(
                "demo: a sample Vault+ with {media} media ({images} images, {} clips) in 4 lists is serving at {}",
                media - images,
                server.base_url()
            ))
        );
    }
    let watchers = Watchers::start(&settings, "demo")?;
    let code = run_watched(&settings, "demo", watchers).await?;
    if talk {
        eprint!(
            "{}",
            super::terminal::for_stderr(&what_to_open(&settings, code))
        );
    }
    Ok(code)
}

/// The agency demo's last words: the overview page and `status`.
fn agency_what_to_open(settings: &Settings) -> String {
    let out = settings.local.display();
    let command = invoked_as();
    format!(
        "
The mirror is in {out}, one archive per connection ({out}/<connection id>/).
  {out}/index.html   every connection, linking into each one's gallery
Then try `{command} status --out {out}` and `{command} verify --out {out}`.
{}",
        try_next(&command)
    )
}

/// The demo's last words: where the mirror is and what to open — only
/// what is there (an interrupted demo has no gallery yet).
fn what_to_open(settings: &Settings, code: i32) -> String {
    let out = settings.local.display();
    let mut text = if matches!(code, 130 | 143) {
        format!(
            "\nThe demo was stopped; what it verified is in {out}. Run the demo again to finish it.\n"
        )
    } else {
        format!("\nThe mirror is in {out}. Open these to see what it holds:\n")
    };
    let files = Store::open_existing(&settings.db)
        .ok()
        .flatten()
        .and_then(|store| store.verified_files().ok())
        .unwrap_or_default();
    let examples = [
        (
            "full.jpg",
            "a picture (JPEG); thumb.jpg beside it is its small copy",
        ),
        ("full.png", "a picture (PNG), with its thumb.png"),
        (
            "full.mp4",
            "a two-second clip; thumb.jpg is one of its frames",
        ),
    ];
    let mut lines: Vec<(String, &str)> = Vec::new();
    for (name, what) in examples {
        if let Some(file) = files.iter().find(|file| file.local_path.ends_with(name)) {
            lines.push((
                settings.local.join(&file.local_path).display().to_string(),
                what,
            ));
        }
    }
    for (place, what) in [
        ("media/", "every file, by media id"),
        ("index.html", "the offline gallery: open it in a browser"),
        (
            "lists/",
            "one folder per list: links into media/, or an index.html where the disk has no links",
        ),
        (
            "SHA256SUMS",
            "check every file with `sha256sum -c SHA256SUMS`",
        ),
    ] {
        if settings.local.join(place).exists() {
            lines.push((format!("{out}/{place}"), what));
        }
    }
    let width = lines
        .iter()
        .map(|(path, _)| super::terminal::width(path))
        .max()
        .unwrap_or(0);
    for (path, what) in lines {
        let pad = " ".repeat(width - super::terminal::width(&path));
        text.push_str(&format!("  {path}{pad}   {what}\n"));
    }
    let command = invoked_as();
    text.push_str(&format!(
        "Then try `{command} status --out {out}` and `{command} verify --out {out}`;\n\
         run the demo again and nothing is downloaded twice.\n"
    ));
    if !matches!(code, 130 | 143) {
        text.push_str(&try_next(&command));
    }
    text
}

/// What to try after the demo, whose server is gone when it ends: a fake
/// server that stays up, its lists, a throttled mirror, Ctrl-C and resume.
fn try_next(command: &str) -> String {
    format!(
        "
Try next, on a fake server that stays up (the demo's is gone now):
  1. in one terminal: {command} fake-server
     and paste the `export …` lines it prints into another; there:
  2. {command} lists
  3. {command} mirror --out try-it --limit-rate 200K
  4. press Ctrl-C mid-way, run the same command again: it resumes
"
    )
}

/// How the user can run this binary again: `cargo run --release --` (or
/// `cargo run --`) when cargo runs it from its build folder (a fresh
/// clone's `cargo run --release -- demo` puts nothing on the PATH), else
/// the command as the user typed it (`vault-mirror` from the PATH, or the
/// path given).
fn invoked_as() -> String {
    let typed = std::env::args_os()
        .next()
        .map(|arg| arg.to_string_lossy().into_owned());
    let exe = std::env::current_exe().unwrap_or_default();
    invoked_as_from(std::env::var_os("CARGO").is_some(), &exe, typed.as_deref())
}

/// [`invoked_as`] from whether cargo runs this process, the binary's path
/// and the first word of its command line.
fn invoked_as_from(under_cargo: bool, exe: &std::path::Path, typed: Option<&str>) -> String {
    let folder = |level: usize| {
        exe.components()
            .rev()
            .nth(level)
            .map(|part| part.as_os_str().to_string_lossy().into_owned())
    };
    if under_cargo && folder(2).as_deref() == Some("target") {
        match folder(1).as_deref() {
            Some("release") => return "cargo run --release --".to_owned(),
            Some("debug") => return "cargo run --".to_owned(),
            _ => {}
        }
    }
    match typed {
        Some(typed) if !typed.is_empty() && !typed.contains(char::is_whitespace) => {
            typed.to_owned()
        }
        _ => "vault-mirror".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::invoked_as_from;

    #[test]
    fn the_demo_names_the_command_as_the_user_ran_it() {
        let release = Path::new("/src/vault-mirror/target/release/vault-mirror");
        // From `cargo run --release -- demo`.
        assert_eq!(
            invoked_as_from(true, release, Some("target/release/vault-mirror")),
            "cargo run --release --"
        );
        assert_eq!(
            invoked_as_from(true, Path::new("/src/x/target/debug/vault-mirror"), None),
            "cargo run --"
        );
        // The release binary on the PATH, or by its path, not under cargo.
        assert_eq!(
            invoked_as_from(false, release, Some("vault-mirror")),
            "vault-mirror"
        );
        assert_eq!(
            invoked_as_from(false, release, Some("./target/release/vault-mirror")),
            "./target/release/vault-mirror"
        );
        assert_eq!(
            invoked_as_from(false, Path::new("/usr/bin/vm"), Some("vm")),
            "vm"
        );
        assert_eq!(invoked_as_from(false, release, None), "vault-mirror");
    }
}
