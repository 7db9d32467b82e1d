//! `liaison link token` and `liaison keys gen-link` as a user runs them: the
//! development key gives the token the README and the examples show, however
//! the identifiers are written; bad input is refused with the field named and
//! exit 1; a key file is made private and never overwritten.

use std::process::Output;

fn liaison(args: &[&str]) -> Output {
    crate::run(args)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim().to_owned()
}

/// Alex Example, 2010-04-12, under deploy/linkage/dev-partnership.key (README, deploy/examples).
const ALEX: &str = "st1:SQHU-Cvi3OzFuZYjI0hw-tWBeuTTzQ-1elxR4WFxCqo";

#[test]
fn link_token_prints_the_same_token_however_the_person_is_written() {
    for args in [
        &[
            "link",
            "token",
            "--name",
            "Alex Example",
            "--dob",
            "2010-04-12",
        ][..],
        &[
            "link",
            "token",
            "--key",
            "deploy/linkage/dev-partnership.key",
            "--name",
            "EXAMPLE, Alex",
            "--dob",
            "12/04/2010",
        ],
    ] {
        let out = liaison(args);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout), ALEX);
    }
    let with_id = liaison(&[
        "link",
        "token",
        "--name",
        "Alex Example",
        "--dob",
        "2010-04-12",
        "--id",
        "nhs=943 476 5919",
        "--show-normalised",
    ]);
    assert!(with_id.status.success(), "{}", text(&with_id.stderr));
    assert_ne!(text(&with_id.stdout), ALEX);
    assert!(text(&with_id.stderr).contains("id    nhs=9434765919"));
    for (args, says) in [
        (
            &["link", "token", "--name", "Alex Example"][..],
            "go together",
        ),
        (
            &["link", "token", "--name", "Alex", "--dob", "31/04/2010"],
            "date of birth",
        ),
        (&["link", "token", "--id", "nhs"], "SCHEME=VALUE"),
        (&["link", "token", "--id", "nhs=1234567890"], "check digit"),
        (
            &["link", "token", "--key", "Cargo.toml", "--id", "x=1"],
            "Cargo.toml",
        ),
    ] {
        let out = liaison(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            text(&out.stderr).contains(says),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn gen_link_writes_a_private_key_once() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("partnership.key");
    let path_text = path.display().to_string();
    let out = liaison(&["keys", "gen-link", "--out", &path_text]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&path)?.permissions().mode() & 0o777,
            0o600
        );
    }
    let key = std::fs::read_to_string(&path)?;
    assert_eq!(key.trim().len(), 43);
    let again = liaison(&["keys", "gen-link", "--out", &path_text]);
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again.stderr).contains("already exists"));
    assert_eq!(std::fs::read_to_string(&path)?, key);
    let out = liaison(&[
        "link",
        "token",
        "--key",
        &path_text,
        "--name",
        "Alex Example",
        "--dob",
        "2010-04-12",
    ]);
    assert!(out.status.success());
    assert_ne!(text(&out.stdout), ALEX, "another key, another token");
    Ok(())
}
