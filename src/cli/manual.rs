//! The manual kept true by tests: the README and the user guide in
//! `docs/` (every `vault-mirror …` line of a ```sh block parses with the
//! real command line, every relative link and `#anchor` resolves), and the
//! manual pages in `docs/man/`, generated from the clap definition by
//! `clap_mangen` and compared with it.
//!
//! The man pages are written by a test rather than by a `man` subcommand
//! or a build script: clap_mangen is then a dev-dependency only, the
//! release binary and the command-line contract stay as they are, and a
//! change to `args.rs` that forgets the pages fails `cargo test` with the
//! command that writes them again.

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};

    use clap::CommandFactory;

    use crate::cli::args::{Cli, parse_command_line};

    const REGENERATE: &str = "VAULT_MIRROR_WRITE_MAN=1 cargo test --bin vault-mirror man_pages";

    fn root() -> &'static Path {
        Path::new(env!("CARGO_MANIFEST_DIR"))
    }

    /// The README, `bench/README.md` and every Markdown file under `docs/`,
    /// whoever added it.
    fn manual_files() -> Vec<PathBuf> {
        fn walk(folder: &Path, found: &mut Vec<PathBuf>) {
            let mut entries: Vec<_> = std::fs::read_dir(folder)
                .unwrap()
                .map(|entry| entry.unwrap().path())
                .collect();
            entries.sort();
            for path in entries {
                if path.is_dir() {
                    walk(&path, found);
                } else if path.extension().is_some_and(|ext| ext == "md") {
                    found.push(path);
                }
            }
        }
        let mut files = vec![root().join("README.md"), root().join("bench/README.md")];
        walk(&root().join("docs"), &mut files);
        files
    }

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
    }

    /// Each line of the file's ```sh blocks, with its line number, a line
    /// ending in `\` joined to the next.
    fn shell_lines(text: &str) -> Vec<(usize, String)> {
        let mut lines = Vec::new();
        let mut in_sh = false;
        let mut pending: Option<(usize, String)> = None;
        for (index, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("```") {
                in_sh = !in_sh && line.trim() == "```sh";
                continue;
            }
            if !in_sh {
                continue;
            }
            let (number, mut joined) = pending.take().unwrap_or((index + 1, String::new()));
            match line.strip_suffix('\\') {
                Some(start) => {
                    joined.push_str(start);
                    pending = Some((number, joined));
                }
                None => {
                    joined.push_str(line);
                    lines.push((number, joined));
                }
            }
        }
        lines
    }

    #[test]
    fn every_command_line_in_the_manual_parses() {
        let mut checked = 0;
        let mut failures = Vec::new();
        for path in manual_files() {
            for (number, line) in shell_lines(&read(&path)) {
                if !line.trim_start().starts_with("vault-mirror ") {
                    continue;
                }
                checked += 1;
                if let Err(error) = parse_command_line(&line) {
                    failures.push(format!("{}:{number}: {line}\n{error}", path.display()));
                }
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
        assert!(checked > 20, "only {checked} command lines found");
    }

    #[test]
    fn a_wrong_command_line_in_the_manual_would_be_caught() {
        for line in [
            "vault-mirror mirror --qualty all",
            "vault-mirror mirorr --out x",
            "vault-mirror fake-server --bandwidth fast",
        ] {
            assert!(parse_command_line(line).is_err(), "{line}");
        }
        for line in [
            "vault-mirror fake-server --media 200 > env.sh &   # then: . ./env.sh",
            "vault-mirror verify --repair --quiet && curl -fsS https://example.com",
            "exec /usr/local/bin/vault-mirror status --out /srv/vault-archive",
        ] {
            assert!(parse_command_line(line).is_ok(), "{line}");
        }
    }

    /// GitHub's anchor for a heading: lower case, punctuation dropped,
    /// spaces as hyphens; a repeated one gets `-1`, `-2`, ….
    fn anchors(text: &str) -> Vec<String> {
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        let mut anchors = Vec::new();
        let mut fenced = false;
        for line in text.lines() {
            if line.trim_start().starts_with("```") {
                fenced = !fenced;
                continue;
            }
            let Some(heading) = line.strip_prefix('#') else {
                continue;
            };
            if fenced || !heading.trim_start_matches('#').starts_with(' ') {
                continue;
            }
            let slug: String = heading
                .trim_start_matches('#')
                .trim()
                .to_lowercase()
                .chars()
                .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
                .map(|c| if c == ' ' { '-' } else { c })
                .collect();
            let count = seen.entry(slug.clone()).or_insert(0);
            anchors.push(match *count {
                0 => slug,
                n => format!("{slug}-{n}"),
            });
            *count += 1;
        }
        anchors
    }

    /// The targets of the file's Markdown links `[text](target)`, outside
    /// code blocks and code spans, with their line numbers.
    fn links(text: &str) -> Vec<(usize, String)> {
        let mut found = Vec::new();
        let mut fenced = false;
        for (index, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("```") {
                fenced = !fenced;
                continue;
            }
            if fenced {
                continue;
            }
            // Code spans hold no links: drop them first.
            let plain: String = line
                .split('`')
                .enumerate()
                .filter(|(part, _)| part % 2 == 0)
                .map(|(_, text)| text)
                .collect::<Vec<_>>()
                .join(" ");
            let mut rest = plain.as_str();
            while let Some(start) = rest.find("](") {
                let after = &rest[start + 2..];
                let Some(end) = after.find(')') else { break };
                found.push((index + 1, after[..end].to_owned()));
                rest = &after[end..];
            }
        }
        found
    }

    #[test]
    fn every_relative_link_in_the_manual_resolves() {
        let mut failures = Vec::new();
        let mut checked = 0;
        for path in manual_files() {
            let text = read(&path);
            for (number, target) in links(&text) {
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                checked += 1;
                let (file, anchor) = match target.split_once('#') {
                    Some((file, anchor)) => (file, Some(anchor)),
                    None => (target.as_str(), None),
                };
                let linked = if file.is_empty() {
                    path.clone()
                } else {
                    path.parent().unwrap().join(file)
                };
                let place = format!("{}:{number}: ({target})", path.display());
                if !linked.exists() {
                    failures.push(format!("{place}: no {}", linked.display()));
                    continue;
                }
                if let Some(anchor) = anchor {
                    if linked.extension().is_none_or(|ext| ext != "md") {
                        failures.push(format!(
                            "{place}: an anchor into a file that is not Markdown"
                        ));
                    } else if !anchors(&read(&linked)).iter().any(|known| known == anchor) {
                        failures.push(format!("{place}: no heading #{anchor} there"));
                    }
                }
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
        assert!(checked > 20, "only {checked} links found");
    }

    #[test]
    fn anchors_are_githubs() {
        let text = "# Title\n## What it holds: `status`, `verify`, `lists`\n```sh\n# not one\n```\n## Title\n";
        assert_eq!(
            anchors(text),
            ["title", "what-it-holds-status-verify-lists", "title-1"]
        );
        assert_eq!(
            links("see [a](b.md#c) and `[no](link)` [d](#e)"),
            [(1, "b.md#c".to_owned()), (1, "#e".to_owned())]
        );
    }

    /// Every manual page of the command line: the top command's and one
    /// per visible subcommand (`vault-mirror-mirror.1`, …), by file name.
    fn man_pages() -> BTreeMap<String, Vec<u8>> {
        fn render(command: clap::Command, pages: &mut BTreeMap<String, Vec<u8>>) {
            for sub in command.get_subcommands().filter(|sub| !sub.is_hide_set()) {
                render(sub.clone(), pages);
            }
            let man = clap_mangen::Man::new(command);
            let mut page = Vec::new();
            man.render(&mut page).unwrap();
            pages.insert(man.get_filename(), page);
        }
        let mut command = Cli::command().disable_help_subcommand(true);
        command.build();
        let mut pages = BTreeMap::new();
        render(command, &mut pages);
        pages
    }

    #[test]
    fn man_pages_are_generated_from_the_command_line() {
        let folder = root().join("docs/man");
        let pages = man_pages();
        assert!(
            pages.contains_key("vault-mirror.1") && pages.contains_key("vault-mirror-mirror.1")
        );
        if std::env::var_os("VAULT_MIRROR_WRITE_MAN").is_some() {
            std::fs::create_dir_all(&folder).unwrap();
            for entry in std::fs::read_dir(&folder).unwrap() {
                std::fs::remove_file(entry.unwrap().path()).unwrap();
            }
            for (name, page) in &pages {
                std::fs::write(folder.join(name), page).unwrap();
            }
        }
        let mut written: Vec<String> = std::fs::read_dir(&folder)
            .map(|entries| {
                entries
                    .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        written.sort();
        let expected: Vec<String> = pages.keys().cloned().collect();
        assert_eq!(
            written, expected,
            "docs/man/ does not hold the pages the command line has; write them again with `{REGENERATE}`"
        );
        for (name, page) in &pages {
            let on_disk = std::fs::read(folder.join(name)).unwrap();
            assert!(
                on_disk == *page,
                "docs/man/{name} differs from what the command line (src/cli/args.rs) gives; write it again with `{REGENERATE}`"
            );
        }
    }
}
