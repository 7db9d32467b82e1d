//! Finding, checking and running a nats-server: the child server of
//! `liaison up` and of every test. It is started with a configuration rendered
//! from [`crate::users`], on a given or random port, with its own JetStream
//! store (optionally capped, as a small disk would be), and killed when the
//! handle is dropped.

use crate::nats_conf::{ServerTls, tls_block};
use crate::users::{NatsUser, render_authorization};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The oldest nats-server accepted: earlier ones miss security fixes.
pub const MIN_VERSION: (u32, u32, u32) = (2, 12, 6);
/// Environment variable naming the nats-server binary to use.
pub const ENV_BINARY: &str = "LIAISON_NATS_SERVER";
/// Project-local install directory, relative to the repository root.
pub const LOCAL_DIR: &str = ".tools/nats-server/bin";
const INSTALL_HINT: &str = "run `bash deploy/install-nats-server.sh` from the repository root \
     (or set LIAISON_NATS_SERVER to a nats-server >= 2.12.6)";

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("nats-server not found ({searched}): {INSTALL_HINT}")]
    NotFound { searched: String },
    #[error("{path} is nats-server {found}, older than the 2.12.6 Liaison needs: {INSTALL_HINT}")]
    TooOld { path: PathBuf, found: String },
    #[error("could not run {path} --version: {reason}: {INSTALL_HINT}")]
    Version { path: PathBuf, reason: String },
    #[error("could not start nats-server: {0}")]
    Start(String),
}

/// Finds nats-server: `$LIAISON_NATS_SERVER`, then `PATH`, then `.tools/nats-server/bin`
/// in this or a parent directory; checks that it is recent enough.
pub fn locate() -> Result<PathBuf, ServerError> {
    let mut searched = Vec::new();
    if let Some(path) = std::env::var_os(ENV_BINARY) {
        let path = PathBuf::from(path);
        if path.is_file() {
            check_version(&path)?;
            return Ok(path);
        }
        searched.push(format!("{ENV_BINARY}={}", path.display()));
    }
    searched.push("PATH".into());
    let on_path = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("nats-server"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let local = local_candidates();
    searched.extend(local.iter().map(|p| p.display().to_string()));
    let mut first_error = None;
    for path in on_path.into_iter().chain(local).filter(|p| p.is_file()) {
        match check_version(&path) {
            Ok(()) => return Ok(path),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or(ServerError::NotFound {
        searched: searched.join(", "),
    }))
}

fn local_candidates() -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Ok(dir) = std::env::current_dir() {
        roots.extend(dir.ancestors().map(Path::to_path_buf));
    }
    // The workspace this crate was built in (tests and `cargo run`).
    roots.extend(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .map(Path::to_path_buf),
    );
    let mut out: Vec<PathBuf> = Vec::new();
    for root in roots {
        let candidate = root.join(LOCAL_DIR).join("nats-server");
        if !out.contains(&candidate) {
            out.push(candidate);
        }
    }
    out
}

/// Parses `nats-server: v2.15.1` into (2, 15, 1).
pub fn parse_version(text: &str) -> Option<(u32, u32, u32)> {
    let v = text.trim().rsplit(' ').next()?.trim_start_matches('v');
    let mut parts = v.split(['.', '-']).map(|p| p.parse::<u32>());
    Some((
        parts.next()?.ok()?,
        parts.next()?.ok()?,
        parts.next()?.ok()?,
    ))
}

fn check_version(path: &Path) -> Result<(), ServerError> {
    let out = Command::new(path)
        .arg("--version")
        .output()
        .map_err(|e| ServerError::Version {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    match parse_version(&text) {
        Some(v) if v >= MIN_VERSION => Ok(()),
        Some(_) => Err(ServerError::TooOld {
            path: path.to_owned(),
            found: text.trim().to_owned(),
        }),
        None => Err(ServerError::Version {
            path: path.to_owned(),
            reason: format!("unrecognised output {:?}", text.trim()),
        }),
    }
}

/// How to run a child nats-server. The default: a free port, a temporary
/// store, the server's own flush and store limit, plain, and no users.
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// Client port; `None` picks a free one.
    pub port: Option<u16>,
    /// JetStream store directory; `None` uses a temporary one removed on drop.
    pub store_dir: Option<PathBuf>,
    /// JetStream `sync_interval` (e.g. "2m", "always"); `None` keeps the server default.
    pub sync_interval: Option<String>,
    /// JetStream `max_file_store` in bytes: past it, writes are refused
    /// ("insufficient resources"), as on a full disk. `None`: the server's
    /// default (most of the disk).
    pub max_file_store: Option<u64>,
    pub users: Vec<NatsUser>,
    /// Serve clients over TLS only (`None`: plain, the development system);
    /// with `verify`, only clients presenting a certificate signed by its CA.
    pub tls: Option<ServerTls>,
}

/// A running child nats-server, killed on drop.
#[derive(Debug)]
pub struct NatsServer {
    binary: PathBuf,
    options: ServerOptions,
    child: Option<Child>,
    work: tempfile::TempDir,
    store: PathBuf,
    port: u16,
    /// The client port as written in the running configuration (`None`:
    /// random), which a reload must repeat unchanged.
    listen: Option<u16>,
}

impl NatsServer {
    /// Starts nats-server and waits (polling, with a deadline) until it listens.
    pub fn start(options: &ServerOptions) -> Result<Self, ServerError> {
        let binary = locate()?;
        let work = tempfile::Builder::new()
            .prefix("liaison-nats-")
            .tempdir()
            .map_err(|e| ServerError::Start(format!("temporary directory: {e}")))?;
        let store = options
            .store_dir
            .clone()
            .unwrap_or_else(|| work.path().join("jetstream"));
        let mut server = Self {
            binary,
            options: options.clone(),
            child: None,
            work,
            store,
            port: 0,
            listen: None,
        };
        server.launch(options.port)?;
        Ok(server)
    }

    fn launch(&mut self, port: Option<u16>) -> Result<(), ServerError> {
        let ports_dir = self.work.path().join("ports");
        let _ = std::fs::remove_dir_all(&ports_dir);
        std::fs::create_dir_all(&ports_dir)
            .map_err(|e| ServerError::Start(format!("ports directory: {e}")))?;
        self.listen = port;
        let config_path = self.write_config()?;
        let log = std::fs::File::create(self.work.path().join("nats-server.log"))
            .map_err(|e| ServerError::Start(format!("log file: {e}")))?;
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| ServerError::Start(format!("{}: {e}", self.binary.display())))?;
        self.child = Some(child);
        self.port = self.wait_for_port(&ports_dir)?;
        Ok(())
    }

    /// Renders the configuration for the current options and writes it.
    fn write_config(&self) -> Result<PathBuf, ServerError> {
        let ports_dir = self.work.path().join("ports");
        let config = render_config(
            "127.0.0.1",
            self.listen,
            Some(&ports_dir),
            &self.store,
            self.options.sync_interval.as_deref(),
            &self.options.users,
        );
        let mut config = match self.options.max_file_store {
            Some(bytes) => config.replacen(
                "jetstream {\n",
                &format!("jetstream {{\n  max_file_store: {bytes}\n"),
                1,
            ),
            None => config,
        };
        if let Some(tls) = &self.options.tls {
            config.push_str(&tls_block(tls, 0, tls.verify));
        }
        let config_path = self.work.path().join("nats-server.conf");
        std::fs::write(&config_path, config)
            .map_err(|e| ServerError::Start(format!("writing config: {e}")))?;
        Ok(config_path)
    }

    fn wait_for_port(&mut self, ports_dir: &Path) -> Result<u16, ServerError> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                return Err(ServerError::Start(format!(
                    "nats-server exited with {status}: {}",
                    self.log_tail()
                )));
            }
            let found = std::fs::read_dir(ports_dir)
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                .find_map(|text| client_port(&text));
            if let Some(port) = found {
                return Ok(port);
            }
            if Instant::now() > deadline {
                return Err(ServerError::Start(format!(
                    "nats-server did not listen within 20 s: {}",
                    self.log_tail()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The last lines nats-server logged (for error messages).
    pub fn log_tail(&self) -> String {
        let text =
            std::fs::read_to_string(self.work.path().join("nats-server.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().rev().take(5).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
    }

    /// The client URL, e.g. `nats://127.0.0.1:41234` (also when the server
    /// serves TLS: the client upgrades the connection as the server asks).
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The running server's process id (for its memory, `/proc/PID/status`).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server (SIGKILL) and starts it again on the same port and store.
    pub fn restart(&mut self) -> Result<(), ServerError> {
        self.kill();
        self.launch(Some(self.port))
    }

    /// Sets JetStream's `max_file_store` (see [`ServerOptions`]); it takes
    /// effect at the next [`reload`](Self::reload) or [`restart`](Self::restart).
    /// nats-server reloads a changed limit, but not a limit where the server
    /// started without one: start it with one to change it while running.
    pub fn set_max_file_store(&mut self, bytes: Option<u64>) {
        self.options.max_file_store = bytes;
    }

    /// Rewrites the configuration and has the running server reload it
    /// (SIGHUP), as an operator would after growing its volume; waits
    /// (polling, with a deadline) until the server logs that it reloaded.
    pub fn reload(&mut self) -> Result<(), ServerError> {
        const RELOADED: &str = "Reloaded server configuration";
        let log = self.work.path().join("nats-server.log");
        let reloads = || {
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .matches(RELOADED)
                .count()
        };
        let before = reloads();
        self.write_config()?;
        let Some(child) = self.child.as_ref() else {
            return Err(ServerError::Start("nats-server is not running".into()));
        };
        let signalled = Command::new("kill")
            .args(["-s", "HUP", &child.id().to_string()])
            .status()
            .map_err(|e| ServerError::Start(format!("signalling nats-server: {e}")))?;
        if !signalled.success() {
            return Err(ServerError::Start(format!("kill -s HUP: {signalled}")));
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while reloads() == before {
            if Instant::now() > deadline {
                return Err(ServerError::Start(format!(
                    "nats-server did not reload within 10 s: {}",
                    self.log_tail()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Stops the server gracefully (SIGTERM, so JetStream flushes its store),
    /// waiting up to `grace` before killing it.
    pub fn stop(&mut self, grace: Duration) {
        if let Some(child) = self.child.as_mut() {
            let _ = Command::new("kill")
                .args(["-s", "TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + grace;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    self.child = None;
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        self.kill();
    }

    /// Kills the server at once (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A nats-server configuration: listen address and client port (`None`:
/// random), JetStream store, optional `sync_interval`, and the users with
/// their permissions.
pub fn render_config(
    host: &str,
    port: Option<u16>,
    ports_dir: Option<&Path>,
    store: &Path,
    sync_interval: Option<&str>,
    users: &[NatsUser],
) -> String {
    let ports = ports_dir
        .map(|d| format!("ports_file_dir: {:?}\n", d.display().to_string()))
        .unwrap_or_default();
    let sync = sync_interval
        .map(|s| format!("  sync_interval: {s:?}\n"))
        .unwrap_or_default();
    format!(
        "listen: \"{host}:{port}\"\n{ports}max_payload: 1048576\n\
         jetstream {{\n  store_dir: {store:?}\n{sync}}}\n{auth}",
        port = port.map(i32::from).unwrap_or(-1),
        store = store.display().to_string(),
        auth = render_authorization(users),
    )
}

fn client_port(ports_json: &str) -> Option<u16> {
    let value: serde_json::Value = serde_json::from_str(ports_json).ok()?;
    let url = value.get("nats")?.as_array()?.first()?.as_str()?;
    url.rsplit(':').next()?.parse().ok()
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_parsed_and_compared() {
        assert_eq!(parse_version("nats-server: v2.15.1\n"), Some((2, 15, 1)));
        assert_eq!(parse_version("nats-server: v2.12.6-RC.1"), Some((2, 12, 6)));
        assert!(parse_version("nats-server: v2.9.20").is_some_and(|v| v < MIN_VERSION));
        assert_eq!(parse_version("garbage"), None);
    }

    #[test]
    fn a_store_limit_goes_into_the_jetstream_block() -> Result<(), ServerError> {
        let work = tempfile::tempdir().map_err(|e| ServerError::Start(e.to_string()))?;
        let mut server = NatsServer {
            binary: PathBuf::new(),
            options: ServerOptions {
                sync_interval: Some("always".into()),
                max_file_store: Some(65536),
                tls: Some(ServerTls::in_dir(Path::new("/tls"), true)),
                ..ServerOptions::default()
            },
            child: None,
            store: work.path().join("jetstream"),
            work,
            port: 0,
            listen: None,
        };
        let text = std::fs::read_to_string(server.write_config()?).unwrap_or_default();
        assert!(
            text.contains("jetstream {\n  max_file_store: 65536\n  store_dir: "),
            "{text}"
        );
        assert!(
            text.contains("tls {\n  cert_file: \"/tls/server.pem\"")
                && text.contains("  verify: true\n"),
            "{text}"
        );
        server.set_max_file_store(None);
        let text = std::fs::read_to_string(server.write_config()?).unwrap_or_default();
        assert!(!text.contains("max_file_store"), "{text}");
        Ok(())
    }

    #[test]
    fn client_port_is_read_from_the_ports_file() {
        let json = r#"{"nats":["nats://127.0.0.1:41234"],"monitoring":[]}"#;
        assert_eq!(client_port(json), Some(41234));
    }
}
