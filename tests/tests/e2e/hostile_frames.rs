//! 10,000 malformed or oversized frames at the gateway, over a real
//! nats-server, 100 at a time: every sender gets a refusal with a known code
//! and a reason, nothing is delivered, the gateway keeps serving, every
//! refusal is in the ledger, and the process's memory stays within twice
//! what it was after a warm-up.

use futures_util::future::join_all;
use liaison_proto::v1::Decision;
use liaison_proto::v1::verdict::Outcome;
use liaison_tests::Rng;
use liaison_tests::{agency, config, inbox_exactly, ledger, referral, repo_root, start_with};
use prost::Message as _;

const FRAMES: usize = 10_000;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Frame `n`: random bytes, a valid envelope with bytes flipped or cut, or
/// one over the size limit.
fn frame(rng: &mut Rng, n: usize, seed: &[u8]) -> Vec<u8> {
    match n % 4 {
        0 => (0..(rng.next_u64() % 400) as usize)
            .map(|_| rng.next_u64() as u8)
            .collect(),
        1 => {
            let mut bytes = seed.to_vec();
            let i = (rng.next_u64() as usize) % bytes.len();
            bytes[i] ^= 0xff;
            bytes.truncate(i + 1);
            bytes
        }
        2 => vec![0x0a; 64 * 1024 + 1 + (rng.next_u64() % 1024) as usize],
        _ => {
            let mut bytes = seed.to_vec();
            bytes.insert(0, 0xff);
            bytes
        }
    }
}

#[tokio::test]
#[allow(clippy::print_stdout)] // the figures, for the evidence notes (--nocapture)
async fn ten_thousand_bad_frames_are_each_refused_and_memory_stays_bounded() -> anyhow::Result<()> {
    // school-a may send as fast as it likes here: the frames, not the rate
    // limiter, are under test.
    let dir = tempfile::tempdir()?;
    let registry = std::fs::read_to_string(repo_root().join("deploy/agencies/registry.toml"))?
        .replace(
            "name = \"Northfield Academy\"",
            "name = \"Northfield Academy\"\nrate_per_sec = 1000000\nburst = 1000000",
        );
    let path = dir.path().join("registry.toml");
    std::fs::write(&path, registry)?;
    let mut config = config();
    config.paths.registry = path;
    let system = start_with(config).await?;
    let school = agency(&system, "school-a").await?;
    let police = agency(&system, "police").await?;
    let token = school.token("school-a-dsl")?;
    let seed = referral("school-a", "seed").encode_to_vec();
    let mut rng = Rng(0x00f0_0d5e_ed01);
    let known = [
        "too_large",
        "malformed_envelope",
        "invalid_field",
        "policy_denied",
    ];

    let mut codes = std::collections::BTreeMap::<String, usize>::new();
    let mut baseline = 0;
    for start in (0..FRAMES).step_by(100) {
        if start == 1_000 {
            baseline = rss_kib();
        }
        let frames: Vec<Vec<u8>> = (start..start + 100)
            .map(|n| frame(&mut rng, n, &seed))
            .collect();
        let verdicts = join_all(
            frames
                .into_iter()
                .map(|f| school.send_raw(f.into(), Some(&token))),
        )
        .await;
        for verdict in verdicts {
            let verdict = verdict?;
            assert_eq!(verdict.outcome, Outcome::Refused as i32, "{verdict:?}");
            assert!(known.contains(&verdict.code.as_str()), "{verdict:?}");
            assert!(!verdict.reason.is_empty());
            *codes.entry(verdict.code).or_default() += 1;
        }
    }
    let after = rss_kib();
    assert!(
        after <= 2 * baseline,
        "memory grew from {baseline} KiB to {after} KiB"
    );
    assert_eq!(codes.values().sum::<usize>(), FRAMES, "{codes:?}");
    assert!(codes.get("too_large") >= Some(&(FRAMES / 4)), "{codes:?}");

    // Still serving, nothing bad delivered, every refusal audited.
    let verdict = school
        .send(&referral("school-a", "after-the-storm"))
        .await?;
    assert_eq!(verdict.outcome, Outcome::Accepted as i32, "{verdict:?}");
    inbox_exactly(&police, 1).await?;
    let (report, records) = ledger(&system).await?;
    assert!(report.intact(), "{report:?}");
    let refused = records
        .iter()
        .filter(|r| r.decision == Decision::Refused as i32)
        .count();
    assert_eq!(refused, FRAMES);
    println!(
        "codes {codes:?}; RSS {baseline} KiB after warm-up, {after} KiB after {FRAMES} frames"
    );
    system.shutdown().await
}
