//! What can be checked of deploy/ without Docker or Kubernetes: the
//! committed cluster and leaf-node configurations are exactly what `liaison
//! nats-config` generates, and nats-server accepts them (`nats-server -t`)
//! with the secrets `--secrets-dir` writes and, the cluster serving TLS,
//! with certificates made for the check; every command the compose file
//! and the Kubernetes manifests run is a `liaison` command that parses; the
//! cluster's service configuration loads with three replicas.

use crate::root;
use liaison_runtime::config::Config;
use liaison_runtime::nats_leaf::{HUB_NKEY_ENV, HUB_URLS_ENV, LOCAL_PASSWORD_ENV, hub_urls};
use liaison_runtime::nats_secrets::parse_env;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Output};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

fn liaison(args: &[&str]) -> Result<Output> {
    Ok(Command::new(env!("CARGO_BIN_EXE_liaison"))
        .current_dir(root())
        .args(args)
        .env_remove("LIAISON_CONFIG")
        .output()?)
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `nats-server -t -c conf` with `env`.
fn nats_server_accepts(conf: &Path, env: &BTreeMap<String, String>) -> Result {
    let out = Command::new(liaison_runtime::nats_server::locate()?)
        .args(["-t", "-c"])
        .arg(conf)
        .envs(env)
        .output()?;
    assert!(out.status.success(), "{}: {}", conf.display(), text(&out));
    Ok(())
}

fn conf_files(dir: &Path) -> Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".conf"))
        .collect();
    names.sort();
    Ok(names)
}

/// Where the committed cluster's nodes find their TLS files.
const TLS_DIR: &str = "/etc/nats-tls";

#[test]
fn the_committed_cluster_is_what_nats_config_generates_and_nats_server_accepts() -> Result {
    let work = tempfile::tempdir()?;
    let (dir, secrets) = (work.path().join("cluster"), work.path().join("secrets"));
    let args = |secrets: &Path| {
        let out = liaison(&[
            "nats-config",
            "--cluster-dir",
            &dir.display().to_string(),
            "--store",
            "/data/jetstream",
            "--tls-dir",
            TLS_DIR,
            "--secrets-dir",
            &secrets.display().to_string(),
        ]);
        out.map(|o| (o.status.success(), text(&o)))
    };
    let (ok, said) = args(&secrets)?;
    assert!(ok, "{said}");
    let committed = root().join("deploy/nats/cluster");
    assert_eq!(conf_files(&dir)?, conf_files(&committed)?);
    assert_eq!(conf_files(&dir)?.len(), 3);
    for name in conf_files(&dir)? {
        let generated = std::fs::read_to_string(dir.join(&name))?;
        let kept = std::fs::read_to_string(committed.join(&name))?;
        assert!(
            generated == kept,
            "deploy/nats/cluster/{name} differs from what `liaison nats-config --cluster-dir \
             deploy/nats/cluster --store /data/jetstream --tls-dir {TLS_DIR}` writes: regenerate it"
        );
        assert!(kept.contains(&format!("cert_file: \"{TLS_DIR}/server.pem\"")));
    }
    let env_text = std::fs::read_to_string(secrets.join("nats.env"))?;
    let env = parse_env(&env_text, "nats.env")?;
    // nats-server -t loads the TLS files: the committed files, pointed at
    // certificates made now instead of /etc/nats-tls.
    let tls = work.path().join("nats-tls");
    liaison_system::devtls::write_server_files(&tls)?;
    for name in conf_files(&committed)? {
        let text = std::fs::read_to_string(committed.join(&name))?
            .replace(TLS_DIR, &tls.display().to_string());
        let checked = work.path().join(&name);
        std::fs::write(&checked, text)?;
        nats_server_accepts(&checked, &env)?;
    }
    for file in ["nats.env", "svc-gateway.env", "operator.env", "system.env"] {
        let mode = std::fs::metadata(secrets.join(file))?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{file}");
    }
    // Regenerated, every password already issued is kept.
    let (ok, said) = args(&secrets)?;
    assert!(ok && said.contains("0 new"), "{said}");
    assert_eq!(std::fs::read_to_string(secrets.join("nats.env"))?, env_text);
    Ok(())
}

#[test]
fn the_committed_leaf_node_is_generated_and_accepted() -> Result {
    let hubs = ["liaison-nats.example.org:7422"];
    let hub_ca = format!("{TLS_DIR}/ca.pem");
    let out = liaison(&[
        "nats-config",
        "--leaf",
        "police",
        "--hub",
        hubs[0],
        "--hub-ca",
        &hub_ca,
    ])?;
    assert!(out.status.success(), "{}", text(&out));
    let committed = root().join("deploy/nats/leaf-police.conf");
    let kept = std::fs::read_to_string(&committed)?;
    assert!(
        String::from_utf8_lossy(&out.stdout) == kept,
        "deploy/nats/leaf-police.conf differs from `liaison nats-config --leaf police --hub {} \
         --hub-ca {hub_ca}`",
        hubs[0]
    );
    // The site reaches the cluster over TLS only.
    assert!(
        kept.contains(&format!("tls: {{ ca_file: \"{hub_ca}\"")),
        "{kept}"
    );
    let seed = std::fs::read_to_string(root().join("deploy/agencies/dev-keys/police.nk"))?;
    let env = BTreeMap::from([
        (LOCAL_PASSWORD_ENV.to_owned(), "pLocalSecret".to_owned()),
        (HUB_URLS_ENV.to_owned(), hub_urls(&hubs.map(String::from))),
        (HUB_NKEY_ENV.to_owned(), seed.trim().to_owned()),
    ]);
    // nats-server -t loads the CA file: pointed at one made now.
    let work = tempfile::tempdir()?;
    let tls = work.path().join("nats-tls");
    liaison_system::devtls::write_server_files(&tls)?;
    let checked = work.path().join("leaf-police.conf");
    std::fs::write(&checked, kept.replace(TLS_DIR, &tls.display().to_string()))?;
    nats_server_accepts(&checked, &env)
}

#[test]
fn bad_cluster_and_leaf_arguments_are_refused_by_name() -> Result {
    for (args, says) in [
        (
            &["nats-config", "--leaf", "nobody", "--hub", "h:7422"][..],
            "no such agency",
        ),
        (&["nats-config", "--leaf", "police"][..], "--hub"),
        (
            &[
                "nats-config",
                "--cluster-dir",
                "/nonexistent/x",
                "--tls-dir",
                "relative/tls",
            ][..],
            "--tls-dir relative/tls",
        ),
        (
            &["nats-config", "--leaf", "police", "--hub", "h"][..],
            "\"h\" is not HOST:PORT",
        ),
        (
            &[
                "nats-config",
                "--leaf",
                "police",
                "--hub",
                "h:7422",
                "--hub-ca",
                "ca.pem",
            ][..],
            "--hub-ca ca.pem",
        ),
        (
            &[
                "nats-config",
                "--cluster-dir",
                "/nonexistent/x",
                "--routes",
                "a:1,b:2",
            ][..],
            "at least 3",
        ),
        (
            &[
                "nats-config",
                "--cluster-dir",
                "/nonexistent/x",
                "--routes",
                "a:1,b:2,c",
            ][..],
            "\"c\" is not HOST:PORT",
        ),
    ] {
        let out = liaison(args)?;
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(text(&out).contains(says), "{args:?}: {}", text(&out));
    }
    Ok(())
}

/// The JSON-style arrays after `key:` on the lines of `file` (`command: [...]`, `args: [...]`).
fn arrays(file: &Path, key: &str) -> Result<Vec<Vec<String>>> {
    let mut out = Vec::new();
    for line in std::fs::read_to_string(file)?.lines() {
        if let Some(rest) = line.trim().strip_prefix(&format!("{key}: "))
            && rest.starts_with('[')
        {
            out.push(serde_json::from_str(rest)?);
        }
    }
    Ok(out)
}

#[test]
fn every_command_the_deployments_run_is_a_liaison_command() -> Result {
    let compose = root().join("deploy/compose/compose.yaml");
    let mut commands = arrays(&compose, "command")?;
    let k8s = root().join("deploy/k8s");
    for entry in std::fs::read_dir(&k8s)? {
        commands.extend(arrays(&entry?.path(), "args")?);
    }
    let mut liaison_commands = 0;
    for command in &commands {
        if command.first().map(String::as_str) == Some("nats-server") {
            // `-c /etc/nats/NAME.conf`: a generated node configuration.
            let conf = command.last().map(String::as_str).unwrap_or_default();
            let name = conf.trim_start_matches("/etc/nats/");
            let names: Vec<String> = if name == "$(POD_NAME).conf" {
                (0..3).map(|n| format!("liaison-nats-{n}.conf")).collect()
            } else {
                vec![name.to_owned()]
            };
            for name in names {
                assert!(
                    root().join("deploy/nats/cluster").join(&name).is_file(),
                    "{name}"
                );
            }
            continue;
        }
        let mut args: Vec<&str> = command.iter().map(String::as_str).collect();
        args.push("--help");
        let out = liaison(&args)?;
        assert!(out.status.success(), "liaison {args:?}: {}", text(&out));
        liaison_commands += 1;
    }
    // compose: provision and five services; Kubernetes: the same.
    assert_eq!(liaison_commands, 12, "{commands:?}");
    // Every service's secret file names one of the users `nats-config` writes.
    let text = std::fs::read_to_string(&compose)?;
    for service in ["gateway", "audit", "cases", "linkage", "alerts"] {
        assert!(
            text.contains(&format!("secrets/svc-{service}.env")),
            "{service}"
        );
    }
    Ok(())
}

#[test]
fn the_cluster_configuration_loads_with_three_replicas() -> Result {
    let config = Config::load(Some(&root().join("deploy/config/cluster.toml")))?;
    assert_eq!(config.streams.replicas, 3);
    // The nodes serve TLS only: the services require it.
    assert!(config.nats.tls().required && config.nats.tls().root_ca.is_some());
    assert_eq!(liaison_core::connect::servers(&config.nats.url).len(), 3);
    Ok(())
}

/// `liaison serve gateway`, as a container runs it: its own process with
/// its own NATS user from `LIAISON_NATS_*`, ready on `/readyz`, beside the
/// in-process gateway (they share ingress), and gone on SIGTERM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn liaison_serve_runs_a_service_until_sigterm() -> Result {
    let mut config = Config::default();
    config.paths.registry = root().join("deploy/agencies/registry.toml");
    config.paths.policies = root().join("deploy/policies");
    config.audit.checkpoint_key = root().join("deploy/audit/dev-checkpoint-key.pem");
    config.data.kek_file = root().join("deploy/keys/dev-kek.toml");
    config.audit.auditors = root().join("deploy/audit/auditors.toml");
    let system = liaison_system::system::System::start(
        config,
        liaison_system::system::UpOptions {
            inspector: true,
            ..liaison_system::system::UpOptions::default()
        },
    )
    .await?;
    let credentials = system.credentials(liaison_runtime::users::GATEWAY)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_liaison"))
        .current_dir(root())
        .args(["serve", "gateway"])
        .env("LIAISON_CONFIG", root().join("deploy/config/liaison.toml"))
        .env("LIAISON_NATS_URL", system.url())
        .env("LIAISON_NATS_USER", &credentials.user)
        .env("LIAISON_NATS_PASSWORD", credentials.password.expose())
        .env("LIAISON_TELEMETRY_LISTEN", format!("127.0.0.1:{port}"))
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut ticks = tokio::time::interval(std::time::Duration::from_millis(50));
    loop {
        ticks.tick().await;
        let ready = std::net::TcpStream::connect(("127.0.0.1", port)).and_then(|mut s| {
            use std::io::{Read as _, Write as _};
            s.write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
            let mut reply = String::new();
            s.read_to_string(&mut reply)?;
            Ok(reply.starts_with("HTTP/1.1 200"))
        });
        if ready.unwrap_or(false) {
            break;
        }
        assert!(
            child.try_wait()?.is_none(),
            "liaison serve gateway exited early"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "not ready within 30 s"
        );
    }
    let pid = child.id().ok_or("no pid")?;
    Command::new("kill")
        .args(["-s", "TERM", &pid.to_string()])
        .status()?;
    let status = tokio::time::timeout(std::time::Duration::from_secs(20), child.wait()).await??;
    assert!(status.success(), "{status}");
    system.shutdown().await?;
    Ok(())
}
