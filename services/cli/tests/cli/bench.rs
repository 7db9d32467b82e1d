//! `liaison bench --quick` as a user runs it, as a real process from the
//! repository root: the table has every row, each with a positive figure
//! and a ratio to its raw baseline, and the goals with met / not met. No
//! timing is asserted: only that every measurement was made and printed.

use std::path::PathBuf;
use std::process::Command;

/// Rows the table must have: (section, the start of the measurement).
const ROWS: &[(&str, &str)] = &[
    ("baseline", "raw NATS core pub/sub"),
    ("baseline", "raw JetStream publish"),
    (
        "pipeline",
        "gateway: envelopes accepted (verdicts), 1 recipient",
    ),
    ("pipeline", "gateway: every copy in DELIVERY, 1 recipient"),
    (
        "pipeline",
        "raw hops: request → stored → 1 copy relayed → read",
    ),
    (
        "pipeline",
        "gateway: envelopes accepted (verdicts), 2 recipient",
    ),
    ("pipeline", "gateway: every copy in DELIVERY, 2 recipient"),
    (
        "pipeline",
        "raw hops: request → stored → 2 copies relayed → read",
    ),
    (
        "pipeline",
        "gateway: envelopes accepted (verdicts), 3 recipient",
    ),
    ("pipeline", "gateway: every copy in DELIVERY, 3 recipient"),
    (
        "pipeline",
        "raw hops: request → stored → 3 copies relayed → read",
    ),
    ("pipeline", "store writes, 1 recipient"),
    ("pipeline", "store writes, 2 recipient"),
    ("pipeline", "store writes, 3 recipient"),
    ("latency", "raw JetStream publish → ack at 100/s"),
    ("latency", "raw hops: request → stored → answer at 100/s"),
    ("latency", "raw hops: … → relayed → read at 100/s"),
    ("latency", "send → verdict at 100/s"),
    ("latency", "send → read by the recipient at 100/s"),
    ("latency", "raw JetStream publish → ack at 400/s"),
    ("latency", "raw hops: request → stored → answer at 400/s"),
    ("latency", "raw hops: … → relayed → read at 400/s"),
    ("latency", "send → verdict at 400/s"),
    ("latency", "send → read by the recipient at 400/s"),
    ("audit", "ledger append in memory"),
    ("audit", "ledger verify in memory"),
    ("audit", "ledger append by the writer"),
    ("audit", "ledger verify + replay online"),
    ("linkage", "raw hash-set lookup"),
    ("linkage", "linkage match, 20000 former + 3000 priority"),
    ("memory", "nats-server (baseline)"),
    ("memory", "liaison serve gateway"),
    ("memory", "liaison serve audit"),
    ("memory", "liaison serve cases"),
    ("memory", "liaison serve linkage"),
    ("memory", "liaison serve alerts"),
];

/// The numbers in `text` (e.g. "p50 0.412 ms / p99 1.200 ms").
fn numbers(text: &str) -> Vec<f64> {
    text.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .filter_map(|w| w.parse().ok())
        .collect()
}

#[test]
fn bench_quick_prints_every_row_with_a_figure_and_a_ratio() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let json = dir.path().join("bench.json");
    let output = Command::new(env!("CARGO_BIN_EXE_liaison"))
        .current_dir(&root)
        .args(["bench", "--quick", "--json"])
        .arg(&json)
        .env_remove("LIAISON_NATS_URL")
        .output()
        .unwrap_or_else(|e| panic!("running liaison bench: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "liaison bench failed: {stderr}\n{stdout}"
    );
    let rows: Vec<Vec<&str>> = stdout
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| section"))
        .map(|l| l.trim_matches('|').split(" | ").map(str::trim).collect())
        .collect();
    for (section, name) in ROWS {
        let row = rows
            .iter()
            .find(|r| r.first() == Some(section) && r.get(1).is_some_and(|n| n.starts_with(name)))
            .unwrap_or_else(|| panic!("no row {section} / {name} in:\n{stdout}"));
        assert_eq!(row.len(), 6, "row {name} has 6 columns: {row:?}");
        let figures = numbers(row[2]);
        assert!(
            !figures.is_empty() && figures.iter().all(|f| *f > 0.0),
            "row {name}: the figure {:?} should be positive",
            row[2]
        );
        // Latency rows: the p99 is the last figure, and must be positive.
        let ratio: f64 = row[3]
            .parse()
            .unwrap_or_else(|e| panic!("row {name}: ratio {:?}: {e}", row[3]));
        assert!(ratio > 0.0, "row {name}: ratio {ratio} should be positive");
        if !row[4].is_empty() {
            assert!(
                row[5] == "met" || row[5] == "not met",
                "row {name}: goal {:?} without met / not met",
                row[4]
            );
        }
    }
    for goal in [
        "≥ 30 % of raw JetStream publish",
        "p99 ≤ 2× raw hops",
        "≥ 1 M records/s",
        "≤ 64 MiB",
    ] {
        assert!(stdout.contains(goal), "goal {goal} not printed:\n{stdout}");
    }
    // With the shipped durability, and every row as JSON too.
    assert!(
        stdout.contains("JetStream sync_interval = always (shipped)"),
        "{stdout}"
    );
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap_or_else(|e| panic!("{e}")))
            .unwrap_or_else(|e| panic!("{e}"));
    let json_rows = written["rows"].as_array().cloned().unwrap_or_default();
    assert_eq!(json_rows.len(), rows.len(), "{written}");
    for row in &json_rows {
        for field in [
            "section",
            "measurement",
            "figure",
            "unit",
            "ratio",
            "goal",
            "met",
        ] {
            assert!(row.get(field).is_some(), "{field} missing in {row}");
        }
        assert!(row["ratio"].as_f64().is_some_and(|r| r > 0.0), "{row}");
    }
}
