//! The shipped policies (deploy/policies) against the development registry:
//! every case of deploy/policies/tests passes (the same runner as
//! `liaison policy test`), the runner can fail, and invalid policy sets are
//! refused with what is wrong named.

use crate::policy::Policy;
use crate::scenarios::{self, Case, Expect};
use liaison_runtime::registry::Registry;
use std::path::{Path, PathBuf};

fn deploy(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy")
        .join(path)
}

fn registry() -> Registry {
    Registry::load(&deploy("agencies/registry.toml")).unwrap_or_else(|e| panic!("{e}"))
}

fn load(dir: &Path) -> Result<Policy, String> {
    Policy::load(dir, &registry()).map_err(|e| e.to_string())
}

#[test]
fn every_policy_test_case_passes() {
    let policy = load(&deploy("policies")).unwrap_or_else(|e| panic!("{e}"));
    let run = scenarios::run_dir(&policy, &registry(), &deploy("policies/tests"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(run.failed.is_empty(), "{:#?}", run.failed);
    assert!(run.passed.len() >= 20, "{} cases", run.passed.len());
}

#[test]
fn a_wrong_expectation_fails_and_says_why() {
    let policy = load(&deploy("policies")).unwrap_or_else(|e| panic!("{e}"));
    let files = scenarios::load_dir(&deploy("policies/tests")).unwrap_or_else(|e| panic!("{e}"));
    let mut case: Case = files[0].1[0].clone();
    assert_eq!(
        scenarios::check(&policy, &registry(), &case),
        Vec::<String>::new()
    );
    case.send = Expect::Deny;
    case.recipients.retain(|a, _| a.as_str() == "council");
    if let Some(sees) = case.recipients.values_mut().next() {
        sees.retain(|l| l != "health");
    }
    let problems = scenarios::check(&policy, &registry(), &case);
    // The first case (isa-channel-01.toml): sent to police, council and nhs-trust.
    assert_eq!(problems.len(), 4, "{problems:#?}");
    assert!(
        problems[0].contains("expected send denied"),
        "{problems:#?}"
    );
    assert!(problems[1].contains("council sees"), "{problems:#?}");
    assert!(
        problems[2].contains("nhs-trust receives a copy"),
        "{problems:#?}"
    );
    assert!(
        problems[3].contains("police receives a copy"),
        "{problems:#?}"
    );
}

fn policy_dir_with(extra: &str, contents: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    for file in ["liaison.cedarschema", "vocabulary.toml", "isa.cedar"] {
        std::fs::copy(deploy(&format!("policies/{file}")), dir.path().join(file))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    std::fs::write(dir.path().join(extra), contents).unwrap_or_else(|e| panic!("{e}"));
    dir
}

#[test]
fn invalid_policy_sets_are_refused_with_what_is_wrong_named() {
    let schema_error = policy_dir_with(
        "bad.cedar",
        "@id(\"X/1\")\npermit (principal, action, resource) when { resource.colour == \"red\" };",
    );
    let err = load(schema_error.path()).err().unwrap_or_default();
    assert!(err.contains("do not validate"), "{err}");

    let syntax = policy_dir_with("bad.cedar", "permit (principal, action, resource) when {");
    let err = load(syntax.path()).err().unwrap_or_default();
    assert!(err.contains("bad.cedar"), "{err}");

    let unnamed = policy_dir_with(
        "unnamed.cedar",
        "permit (principal, action == Liaison::Action::\"send\", resource);",
    );
    let err = load(unnamed.path()).err().unwrap_or_default();
    assert!(err.contains("@id"), "{err}");

    let vocabulary = policy_dir_with("vocabulary.toml", "[purposes]\nx = 1\n");
    let err = load(vocabulary.path()).err().unwrap_or_default();
    assert!(err.contains("vocabulary"), "{err}");
}
