//! `liaison registry generate` writes a national registry that loads, keeps
//! the sample's keys private, refuses to overwrite; `liaison policy explain`
//! on it sends a school's referral to its own area's force and council and to
//! nobody in another area; `liaison bench --agencies` prints a row per size;
//! `liaison demo --national` runs the day with a nation registered beside
//! the partnership and no referral leaves its sender's area.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Output;

fn liaison(args: &[&str]) -> Output {
    crate::run(args)
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn explain(registry: &Path, sender: &str, recipient: &str) -> String {
    let out = liaison(&[
        "policy",
        "--registry",
        &registry.display().to_string(),
        "explain",
        "deploy/examples/referral.json",
        "--sender",
        sender,
        "--recipient",
        recipient,
    ]);
    text(&out)
}

#[test]
fn a_generated_national_registry_loads_and_keeps_referrals_in_their_area() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("national/registry.toml");
    let keys = dir.path().join("keys");
    let path = file.display().to_string();
    let generate = |extra: &[&str]| {
        let mut args = vec![
            "registry",
            "generate",
            "--areas",
            "6",
            "--schools-per-area",
            "3",
            "--out",
            &path,
        ];
        args.extend_from_slice(extra);
        liaison(&args)
    };
    let keys_arg = keys.display().to_string();
    let out = generate(&["--keys-dir", &keys_arg]);
    assert!(out.status.success(), "{}", text(&out));
    // 6 areas x (council, trust, 3 schools) + 2 forces + 6 regions x 5 + 3 national.
    assert!(
        text(&out).contains("65 agencies in 6 areas"),
        "{}",
        text(&out)
    );
    let key = keys.join("school-0001-001.pem");
    let mode = std::fs::metadata(&key)
        .unwrap_or_else(|e| panic!("{}: {e}", key.display()))
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "private keys are private");

    let again = generate(&[]);
    assert!(!again.status.success());
    assert!(text(&again).contains("--force"), "{}", text(&again));

    let own = explain(&file, "school-0001-001", "police-01");
    assert!(own.contains("Does police-01 receive a copy? yes"), "{own}");
    let own = explain(&file, "school-0001-001", "council-0001");
    assert!(
        own.contains("Does council-0001 receive a copy? yes"),
        "{own}"
    );
    for other in ["council-0004", "police-02", "nhs-0001", "school-0001-002"] {
        let out = explain(&file, "school-0001-001", other);
        assert!(
            out.contains(&format!("Does {other} receive a copy? no")),
            "{other}: {out}"
        );
    }

    let bad = liaison(&[
        "registry",
        "generate",
        "--areas",
        "0",
        "--schools-per-area",
        "1",
        "--out",
        &dir.path().join("x.toml").display().to_string(),
    ]);
    assert!(!bad.status.success());
    assert!(text(&bad).contains("--areas"), "{}", text(&bad));
}

#[test]
fn bench_agencies_prints_a_row_per_size_and_kind_then_the_whole_system() {
    let out = liaison(&[
        "bench",
        "--agencies",
        "8,400",
        "--quick",
        "--envelopes",
        "10",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("| referral from a school |"))
        .collect();
    assert_eq!(rows.len(), 2, "{stdout}");
    assert!(rows[0].starts_with("| 11 |"), "{stdout}");
    assert!(stdout.contains("asking every agency"), "{stdout}");
    // The whole system at each size: ready, latencies, rates, memory.
    let system: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains(" (1), ") && l.contains(" (2), "))
        .collect();
    assert_eq!(system.len(), 2, "{stdout}");
    assert!(
        system[0].starts_with("| 11 |") && !system[1].starts_with("| 11 |"),
        "{stdout}"
    );
    for service in ["gateway", "audit", "cases", "linkage", "alerts"] {
        assert_eq!(
            stdout
                .lines()
                .filter(|l| l.contains(&format!("| {service} |")) && l.contains("MiB"))
                .count(),
            2,
            "{service}: {stdout}"
        );
    }
}

#[test]
fn demo_national_runs_the_day_with_a_nation_registered_and_no_referral_leaves_its_area() {
    let out = liaison(&[
        "demo",
        "--national",
        "--areas",
        "12",
        "--schools-per-area",
        "20",
        "--contributions",
        "200",
    ]);
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert!(all.contains("agencies registered, ready in"), "{all}");
    let referrals = all
        .lines()
        .find(|l| l.trim_start().starts_with("referral "))
        .unwrap_or_else(|| panic!("no referral row: {all}"));
    let columns: Vec<&str> = referrals.split_whitespace().collect();
    // kind, shares, inside, outside.
    assert_eq!(columns.get(3), Some(&"0"), "{referrals}");
    assert!(
        columns.get(2).and_then(|n| n.parse::<usize>().ok()) > Some(0),
        "{referrals}"
    );
    assert!(all.contains("Ledger intact"), "{all}");
}
