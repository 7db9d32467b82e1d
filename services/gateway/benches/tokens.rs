//! Token verification cost: a token seen for the first time (signature
//! verified, jti recorded) against a token already verified (cache hit: a
//! SHA-256 and a map lookup), for EdDSA and ES256 keys. One run, this machine:
//! `cargo bench -p liaison-gateway --bench tokens`.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use liaison_core::AgencyId;
use liaison_core::time::unix_now;
use liaison_core::tokens::Signer;
use liaison_gateway::auth::Verifier;
use liaison_runtime::config::GatewayConfig;
use liaison_runtime::registry::Registry;
use std::path::PathBuf;
use std::time::Instant;

fn deploy(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy")
        .join(path)
}

fn main() {
    let registry = Registry::load(&deploy("agencies/registry.toml")).unwrap();
    let police = AgencyId::parse("police").unwrap();
    let now = unix_now();
    println!("| key | first use (verify + jti) | cached | speed-up |");
    println!("|---|---|---|---|");
    for key in ["police", "police-es256"] {
        let pem = std::fs::read_to_string(deploy(&format!("agencies/dev-keys/{key}.pem"))).unwrap();
        let signer = Signer::from_pem(&pem, None).unwrap();
        let n = 5_000;
        let tokens: Vec<String> = (0..n)
            .map(|_| {
                signer
                    .mint("police", "bench", "liaison-gateway", now, 300)
                    .unwrap()
            })
            .collect();
        let verifier = Verifier::new(&registry, &GatewayConfig::default()).unwrap();
        let started = Instant::now();
        for token in &tokens {
            verifier.verify(&police, token, now).unwrap();
        }
        let first = n as f64 / started.elapsed().as_secs_f64();
        let cached_runs = 200_000;
        let started = Instant::now();
        for i in 0..cached_runs {
            verifier.verify(&police, &tokens[i % 64], now).unwrap();
        }
        let cached = cached_runs as f64 / started.elapsed().as_secs_f64();
        println!(
            "| {} | {:.0}/s ({:.1} µs) | {:.0}/s ({:.2} µs) | {:.0}× |",
            signer.alg().as_str(),
            first,
            1e6 / first,
            cached,
            1e6 / cached,
            cached / first
        );
    }
}
