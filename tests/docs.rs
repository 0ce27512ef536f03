//! The documentation held to the repository and to the binary. No test bed needed.
//!
//! - Every relative link in README.md, CONTRIBUTING.md and docs/*.md points to a file that
//!   exists, and a `#anchor` to a heading of that file (GitHub's heading ids).
//! - The README stays short: at most 300 lines; the rest lives in docs/.
//! - The pages, and the comments in src/ and tests/, describe the product, not how it came to be:
//!   no issue or defect numbers, no "session", "as before", "predates".
//! - Every flag `helm safe-rollback --help` names is documented in docs/flags.md, and every flag
//!   of its "Our own flags" table is one `--help` lists.
//!
//! The exit-code table of the README is checked by `src/domain/exit.rs`'s unit tests.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::LazyLock;

use regex::Regex;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// README.md, CONTRIBUTING.md and every page of docs/.
fn pages() -> Vec<PathBuf> {
    let mut pages = vec![root().join("README.md"), root().join("CONTRIBUTING.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .expect("a docs/ directory")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    pages.extend(docs);
    pages
}

/// `path` relative to the repository, for messages.
fn shown(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Each line of a Markdown text with its number, `None` for lines inside fenced code blocks.
fn prose_lines(text: &str) -> Vec<(usize, Option<&str>)> {
    let mut in_code = false;
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            if line.trim_start().starts_with("```") {
                in_code = !in_code;
                return (i + 1, None);
            }
            (i + 1, (!in_code).then_some(line))
        })
        .collect()
}

/// GitHub's id for a heading: lower case; letters, digits, `-` and `_` kept, spaces made `-`,
/// everything else dropped.
fn slug(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The ids of a Markdown file's headings, repeated ones numbered as GitHub does (`-1`, `-2`).
fn anchors(text: &str) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for (_, line) in prose_lines(text) {
        let Some(line) = line else { continue };
        let hashes = line.chars().take_while(|&c| c == '#').count();
        if !(1..=6).contains(&hashes) || !line[hashes..].starts_with(' ') {
            continue;
        }
        let base = slug(line[hashes..].trim().trim_end_matches('#').trim());
        let mut id = base.clone();
        let mut n = 0;
        while ids.contains(&id) {
            n += 1;
            id = format!("{base}-{n}");
        }
        ids.insert(id);
    }
    ids
}

/// The relative link targets of a page, with their line numbers (code blocks and inline code
/// left out; `http(s):` and `mailto:` links are not ours to check).
fn relative_links(text: &str) -> Vec<(usize, String)> {
    let link = Regex::new(r"\]\(([^)\s]+)\)").unwrap();
    let code = Regex::new(r"`[^`]*`").unwrap();
    let mut found = Vec::new();
    for (number, line) in prose_lines(text) {
        let Some(line) = line else { continue };
        let line = code.replace_all(line, "");
        for target in link.captures_iter(&line) {
            let target = &target[1];
            if !(target.starts_with("http://")
                || target.starts_with("https://")
                || target.starts_with("mailto:"))
            {
                found.push((number, target.to_string()));
            }
        }
    }
    found
}

/// What is wrong with one link of `page`, if anything.
fn broken(page: &Path, target: &str) -> Option<String> {
    let (file, anchor) = match target.split_once('#') {
        Some((file, anchor)) => (file, Some(anchor)),
        None => (target, None),
    };
    let path = if file.is_empty() {
        page.to_path_buf()
    } else {
        page.parent().unwrap().join(file)
    };
    if !path.exists() {
        return Some(format!("{target}: no such file"));
    }
    let anchor = anchor?;
    if path.extension().is_none_or(|e| e != "md") {
        return None;
    }
    if anchors(&read(&path)).contains(anchor) {
        None
    } else {
        Some(format!(
            "{target}: {} has no heading #{anchor}",
            shown(&path)
        ))
    }
}

#[test]
fn every_relative_link_points_to_an_existing_file_and_heading() {
    let mut wrong = Vec::new();
    for page in pages() {
        for (number, target) in relative_links(&read(&page)) {
            if let Some(problem) = broken(&page, &target) {
                wrong.push(format!("{}:{number}: {problem}", shown(&page)));
            }
        }
    }
    assert!(wrong.is_empty(), "broken links:\n{}", wrong.join("\n"));
}

#[test]
fn the_readme_is_at_most_300_lines() {
    let lines = read(&root().join("README.md")).lines().count();
    assert!(
        lines <= 300,
        "README.md has {lines} lines: move reference material to docs/"
    );
}

/// Words that tell the project's history rather than the product: `issue 17`, `defect 5`,
/// `session`, `as before`, `predates`.
fn history_word(text: &str) -> Option<String> {
    static WORDS: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)\bissue \d+|\bdefect \d|\bas before\b|\bpredate|\bsessions?\b").unwrap()
    });
    WORDS
        .find_iter(text)
        .find(|m| {
            // `session.rs`, `session::` and the like name code, not history.
            let after = &text[m.end()..];
            !(after.starts_with(".rs") || after.starts_with("::") || after.starts_with('_'))
        })
        .map(|m| m.as_str().to_string())
}

/// The comment of a line of Rust, if it has one: a whole-line comment, or one after code that
/// has no string still open (an even number of quotes before the `//`).
fn comment(line: &str) -> Option<&str> {
    let at = line.find("//")?;
    let (code, rest) = line.split_at(at);
    (code.trim().is_empty() || (code.ends_with(' ') && code.matches('"').count() % 2 == 0))
        .then_some(rest)
}

fn rust_sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_page_or_comment_tells_the_development_history() {
    let mut found = Vec::new();
    for page in pages() {
        for (number, line) in read(&page).lines().enumerate() {
            if let Some(word) = history_word(line) {
                found.push(format!("{}:{}: {word:?}", shown(&page), number + 1));
            }
        }
    }
    let mut sources = Vec::new();
    rust_sources(&root().join("src"), &mut sources);
    rust_sources(&root().join("tests"), &mut sources);
    sources.sort();
    // This file names the words it looks for.
    sources.retain(|file| !file.ends_with("tests/docs.rs"));
    for file in sources {
        for (number, line) in read(&file).lines().enumerate() {
            if let Some(word) = comment(line).and_then(history_word) {
                found.push(format!("{}:{}: {word:?}", shown(&file), number + 1));
            }
        }
    }
    assert!(
        found.is_empty(),
        "development history (say it in the product's own terms):\n{}",
        found.join("\n")
    );
}

/// Every `--flag` in a text.
fn flags_in(text: &str) -> BTreeSet<String> {
    static FLAG: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"--[a-z][a-z0-9-]*[a-z0-9]").unwrap());
    FLAG.find_iter(text)
        .map(|m| m.as_str().to_string())
        .collect()
}

/// The help text, and the flags its "Flags:" section lists (the first `--flag` of each entry).
fn help() -> (String, BTreeSet<String>) {
    let output = Command::new(env!("CARGO_BIN_EXE_helm-safe-rollback"))
        .arg("--help")
        .output()
        .expect("run helm-safe-rollback --help");
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8(output.stdout).unwrap();
    let section = text
        .split("\nFlags:\n")
        .nth(1)
        .expect("--help has a Flags: section");
    let own = section
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.trim_start().starts_with('-'))
        .filter_map(|l| flags_in(l.split("  ").find(|c| !c.trim().is_empty())?).pop_first())
        .collect();
    (text, own)
}

/// The flags of docs/flags.md's "Our own flags" table (the first cell of each row).
fn documented_own_flags(flags_md: &str) -> BTreeSet<String> {
    let section = flags_md
        .split("## Our own flags")
        .nth(1)
        .expect("docs/flags.md has an \"Our own flags\" section");
    section
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .filter_map(|row| flags_in(row.split('|').nth(1)?).pop_first())
        .collect()
}

/// Whether `text` names `flag` itself (`--force` is not named by `--force-conflicts`).
fn names(text: &str, flag: &str) -> bool {
    text.match_indices(flag).any(|(at, _)| {
        let next = text[at + flag.len()..].chars().next();
        !next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-')
    })
}

#[test]
fn the_flags_reference_matches_help() {
    let (help, own) = help();
    assert!(
        own.contains("--output") && own.contains("--help"),
        "{own:?}"
    );
    let flags_md = read(&root().join("docs/flags.md"));
    let undocumented: Vec<String> = flags_in(&help)
        .into_iter()
        .filter(|flag| !names(&flags_md, flag))
        .collect();
    assert!(
        undocumented.is_empty(),
        "--help names flags docs/flags.md does not: {undocumented:?}"
    );
    let documented = documented_own_flags(&flags_md);
    assert_eq!(
        documented, own,
        "docs/flags.md's \"Our own flags\" table and --help's Flags: section differ"
    );
}
