//! One nats-server child process of a cluster or leaf-node test: started
//! from a configuration file with its secrets in its environment (as a
//! deployment runs it), killed with SIGKILL on demand and on drop; plus
//! free ports for it and `nats-server -t` for checking a configuration
//! offline. A whole cluster is [`crate::cluster`]; the single server of the
//! other suites is `liaison_runtime::nats_server`.

use anyhow::{Context as _, Result, bail};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The nats-server the project uses (`LIAISON_NATS_SERVER`, PATH, `.tools/`).
pub fn binary() -> Result<PathBuf> {
    Ok(liaison_runtime::nats_server::locate()?)
}

/// `count` distinct ports free on 127.0.0.1 at the time of asking (each
/// bound to port 0 and released). Another process may take one before the
/// server binds it: callers retry on "address already in use".
pub fn free_ports(count: usize) -> Result<Vec<u16>> {
    let listeners = (0..count)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()?;
    Ok(listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<std::io::Result<Vec<_>>>()?)
}

/// Checks a configuration with `nats-server -t -c FILE`, its environment
/// variables set; the error carries nats-server's complaint.
pub fn check_config(conf: &Path, env: &BTreeMap<String, String>) -> Result<()> {
    let out = Command::new(binary()?)
        .arg("-t")
        .arg("-c")
        .arg(conf)
        .envs(env)
        .output()
        .context("running nats-server -t")?;
    if !out.status.success() {
        bail!(
            "nats-server refuses {}: {}{}",
            conf.display(),
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// A running nats-server child, killed on drop.
pub struct NatsProcess {
    conf: PathBuf,
    env: BTreeMap<String, String>,
    log: PathBuf,
    child: Option<Child>,
}

impl NatsProcess {
    /// Starts nats-server with `conf` and `env`, logging to `log`; waits
    /// until it accepts connections on `port` (polling, within 20 s).
    pub fn start(
        conf: &Path,
        env: &BTreeMap<String, String>,
        log: &Path,
        port: u16,
    ) -> Result<Self> {
        let mut process = Self {
            conf: conf.to_owned(),
            env: env.clone(),
            log: log.to_owned(),
            child: None,
        };
        process.launch(port)?;
        Ok(process)
    }

    fn launch(&mut self, port: u16) -> Result<()> {
        // Appended: a restarted node's log keeps what it said before.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let child = Command::new(binary()?)
            .arg("-c")
            .arg(&self.conf)
            .envs(&self.env)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting nats-server")?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                bail!("nats-server exited with {status}: {}", self.log_tail());
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "nats-server did not listen within 20 s: {}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts it again, same configuration and store, after [`kill`](Self::kill).
    pub fn restart(&mut self, port: u16) -> Result<()> {
        self.kill();
        self.launch(port)
    }

    /// Kills it at once (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether it is running.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The last lines it logged.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().rev().take(6).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
    }
}

impl Drop for NatsProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
