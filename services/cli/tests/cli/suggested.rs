//! Every command the README and `liaison up` suggest works exactly as
//! printed. `liaison up` is started as the README starts it (default ports,
//! default session), in a scratch directory holding the repository's
//! `deploy/` and `.tools/`, with `liaison` on `PATH` (the README's alias);
//! then, in order:
//! - each command `liaison up` prints under "Try, in another terminal:";
//! - each `$ ` command in the README's code blocks (a line ending in `\`
//!   goes on on the next), expecting exit status 1 where the README shows
//!   the command's output as REFUSED and 0 otherwise. `NAME=$(…)` sets
//!   `NAME` for the commands after it, as a shell would. An id the README
//!   shows in an earlier command's output (an envelope id, an ack id) is
//!   replaced by the id that command really printed.
//!
//! Lines without `$ ` in the README are syntax (placeholders such as
//! `CASE-0042`), not commands to copy, and are not run.

use crate::root;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A README command and the output the README shows for it.
#[derive(Debug)]
struct Shown {
    command: String,
    output: Vec<String>,
}

/// The `$ ` commands of `markdown`'s code blocks, in order.
fn shown_commands(markdown: &str) -> Vec<Shown> {
    let mut shown: Vec<Shown> = Vec::new();
    let mut in_block = false;
    let mut continued = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            continued = false;
            continue;
        }
        if !in_block {
            continue;
        }
        if continued {
            if let Some(last) = shown.last_mut() {
                last.command.push('\n');
                last.command.push_str(line);
            }
            continued = line.trim_end().ends_with('\\');
        } else if let Some(command) = line.strip_prefix("$ ") {
            continued = command.trim_end().ends_with('\\');
            shown.push(Shown {
                command: command.to_owned(),
                output: Vec::new(),
            });
        } else if let Some(last) = shown.last_mut() {
            last.output.push(line.to_owned());
        }
    }
    shown
}

fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// Ids in `text`: runs of id characters at least 20 long that hold a
/// digit (UUIDs, ack ids), each with the eight characters before it.
fn ids(text: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut offset = 0;
    while let Some(start) = text[offset..].find(is_id_char) {
        let start = offset + start;
        let len = text[start..]
            .find(|c| !is_id_char(c))
            .unwrap_or(text.len() - start);
        let id = &text[start..start + len];
        if id.len() >= 20 && id.chars().any(|c| c.is_ascii_digit()) {
            let context = text[..start]
                .char_indices()
                .rev()
                .nth(7)
                .map_or(0, |(i, _)| i);
            found.push((text[context..start].to_owned(), id.to_owned()));
        }
        offset = start + len;
    }
    found
}

/// The id `actual` holds where `shown` holds `id`: after the same context.
fn id_in(actual: &str, context: &str) -> Option<String> {
    let at = actual.find(context)? + context.len();
    let id: String = actual[at..]
        .chars()
        .take_while(|&c| is_id_char(c))
        .collect();
    (!id.is_empty()).then_some(id)
}

/// Words of a README output that say what happened; where the README's
/// output holds one, the real output must too.
const OUTCOMES: [&str; 7] = [
    "ACCEPTED",
    "REFUSED",
    "Ledger intact",
    "\"ack_id\"",
    "\"acked\":1",
    "\"openapi\"",
    "st1:",
];

/// Stops `liaison up` with Ctrl-C when the test ends, however it ends.
struct Up(Child);

impl Drop for Up {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-s", "INT", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

/// Runs `command` with bash in `dir`, `liaison` on `PATH`; (status, stdout).
fn run(dir: &Path, path: &str, vars: &BTreeMap<String, String>, command: &str) -> (i32, String) {
    let out = Command::new("bash")
        .args(["-c", command])
        .current_dir(dir)
        .env("PATH", path)
        .env_remove("LIAISON_NATS_URL")
        .envs(vars)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {command:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let status = out.status.code().unwrap_or(-1);
    // Shown for a failing test (nextest and `cargo test` keep it otherwise).
    #[allow(clippy::print_stderr)]
    {
        eprintln!("$ {command}\n{stdout}{stderr}(exit {status})");
    }
    (status, stdout)
}

#[test]
fn every_command_the_readme_and_liaison_up_suggest_runs_as_printed() {
    let readme = std::fs::read_to_string(root().join("README.md"))
        .unwrap_or_else(|e| panic!("README.md: {e}"));
    let shown = shown_commands(&readme);
    assert!(
        shown.iter().any(|s| s.command == "liaison up"),
        "the README starts the system with `$ liaison up`: {shown:?}"
    );

    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let work = dir.path();
    for linked in ["deploy", ".tools"] {
        std::os::unix::fs::symlink(root().join(linked), work.join(linked))
            .unwrap_or_else(|e| panic!("{linked}: {e}"));
    }
    let bin = work.join("bin");
    std::fs::create_dir(&bin).unwrap_or_else(|e| panic!("{e}"));
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_liaison"), bin.join("liaison"))
        .unwrap_or_else(|e| panic!("{e}"));
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );

    // `$ liaison up`, exactly; it names a port already in use.
    let mut child = Command::new(bin.join("liaison"))
        .arg("up")
        .current_dir(work)
        .env("PATH", &path)
        .env_remove("LIAISON_NATS_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("liaison up: {e}"));
    let stdout = child.stdout.take();
    let up = Up(child);
    let mut suggested = Vec::new();
    let mut trying = false;
    let mut seen = Vec::new();
    let mut lines = BufReader::new(stdout.unwrap_or_else(|| panic!("stdout"))).lines();
    for line in lines.by_ref() {
        let line = line.unwrap_or_default();
        seen.push(line.clone());
        if line.contains("Liaison is ready") {
            break;
        }
        if trying {
            suggested.push(line.trim().to_owned());
        }
        trying |= line.starts_with("Try, in another terminal:");
    }
    // Keep reading what `liaison up` prints, so that it never writes to a
    // closed pipe.
    std::thread::spawn(move || for _ in lines {});
    assert!(
        seen.last().is_some_and(|l| l.contains("Liaison is ready")),
        "liaison up did not start: {seen:?}"
    );
    assert!(
        suggested.len() >= 5,
        "liaison up suggests commands: {seen:?}"
    );

    let none = BTreeMap::new();
    for command in &suggested {
        let (status, _) = run(work, &path, &none, command);
        assert_eq!(status, 0, "`liaison up` suggests `{command}`, which failed");
    }

    let mut vars = BTreeMap::new();
    let mut outputs: Vec<(&Shown, String)> = Vec::new();
    for item in shown.iter().filter(|s| s.command != "liaison up") {
        // Ids the README shows earlier become the ones really printed.
        let mut command = item.command.clone();
        for (_, id) in ids(&item.command) {
            let real = outputs.iter().find_map(|(earlier, actual)| {
                let context = ids(&earlier.output.join("\n"))
                    .into_iter()
                    .find(|(_, shown_id)| *shown_id == id)?
                    .0;
                id_in(actual, &context)
            });
            if let Some(real) = real {
                command = command.replace(&id, &real);
            }
        }
        let refused = item.output.iter().any(|l| l.contains("REFUSED"));
        let assignment = command.split_once("=$(").filter(|(name, rest)| {
            name.chars().all(|c| c.is_ascii_uppercase() || c == '_') && rest.ends_with(')')
        });
        let (status, actual) = match assignment {
            Some((name, rest)) => {
                let inner = &rest[..rest.len() - 1];
                let (status, value) = run(work, &path, &vars, inner);
                vars.insert(name.to_owned(), value.trim().to_owned());
                (status, value)
            }
            None => run(work, &path, &vars, &command),
        };
        let wanted = if refused { 1 } else { 0 };
        assert_eq!(
            status, wanted,
            "the README's `{}` exited {status}, not {wanted}",
            item.command
        );
        if !item.output.is_empty() {
            assert!(
                !actual.trim().is_empty(),
                "the README shows output for `{}`; it printed none",
                item.command
            );
        }
        // What the README's output says happened must have happened.
        let shown_output = item.output.join("\n");
        for outcome in OUTCOMES {
            assert!(
                !shown_output.contains(outcome) || actual.contains(outcome),
                "the README shows `{}` printing {outcome}; it printed:\n{actual}",
                item.command
            );
        }
        outputs.push((item, actual));
    }
    drop(up);
}

#[test]
fn readme_commands_are_read_with_their_continuations_and_outputs() {
    let text = "intro\n```\n$ A=$(x)\n$ curl a \\\n    b\n{\"id\":\"3c0e4f0a-6a43-4a8e-9d0b-5b1f2d7a9c41\"}\nliaison cases list\n```\n$ not in a block\n";
    let shown = shown_commands(text);
    assert_eq!(shown.len(), 2, "{shown:?}");
    assert_eq!(shown[0].command, "A=$(x)");
    assert_eq!(shown[1].command, "curl a \\\n    b");
    assert_eq!(shown[1].output.len(), 2);
    let found = ids(&shown[1].output[0]);
    assert_eq!(
        found,
        vec![(
            "{\"id\":\"".to_owned(),
            "3c0e4f0a-6a43-4a8e-9d0b-5b1f2d7a9c41".to_owned()
        )]
    );
    assert_eq!(
        id_in("{\"id\":\"0000-real_id-1\",\"x\":1}", "{\"id\":\"").as_deref(),
        Some("0000-real_id-1")
    );
}
