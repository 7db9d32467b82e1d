//! The separate processes of the fault suites, signalled for real: the
//! `fault-process` binary (`src/bin/fault-process.rs`) run as the gateway or
//! the audit service with its own configuration and NATS user
//! ([`service`]), or as an agency's recorder ([`recorder`]) that may hold a
//! stored batch unacknowledged ([`Hold`], [`held`]). A test cannot SIGSTOP
//! or SIGKILL a part of itself. What the copies prove is [`crate::fault`].

use anyhow::{Context as _, Result, bail};
use liaison_runtime::users;
use liaison_system::system::System;
use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};

/// A separate process run from the `fault-process` binary, killed if dropped.
pub struct Process {
    child: tokio::process::Child,
    log: PathBuf,
}

impl Process {
    /// Starts `binary` as `role` (see `src/bin/fault-process.rs`), its log in `log`.
    pub fn spawn(
        binary: &Path,
        role: &str,
        args: &[&str],
        envs: &[(&str, &str)],
        log: &Path,
    ) -> Result<Self> {
        let child = tokio::process::Command::new(binary)
            .env("FAULT_ROLE", role)
            .args(args)
            .envs(envs.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(log)?)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        Ok(Self {
            child,
            log: log.to_owned(),
        })
    }

    /// Sends `signal` (`STOP`, `CONT`, ...) with kill(1).
    pub fn signal(&self, signal: &str) -> Result<()> {
        let Some(pid) = self.child.id() else {
            bail!("the process has exited: {}", self.log_tail());
        };
        let status = std::process::Command::new("kill")
            .args(["-s", signal, &pid.to_string()])
            .status()?;
        anyhow::ensure!(status.success(), "kill -s {signal} {pid}: {status}");
        Ok(())
    }

    /// Kills it with SIGKILL and reaps it, checking that the kill is what ended it.
    pub async fn kill9(&mut self) -> Result<()> {
        self.child.start_kill()?;
        let status = self.child.wait().await?;
        anyhow::ensure!(
            status.signal() == Some(9),
            "ended with {status}, not by SIGKILL: {}",
            self.log_tail()
        );
        Ok(())
    }

    /// Whether the kernel has it stopped (SIGSTOP), from `/proc/PID/stat`.
    pub fn is_stopped(&self) -> Result<bool> {
        let Some(pid) = self.child.id() else {
            bail!("the process has exited: {}", self.log_tail());
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        // `PID (COMM) STATE ...`; COMM may hold spaces and parentheses.
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next());
        Ok(state == Some("T"))
    }

    /// Fails, with its log, if it has exited.
    pub fn running(&mut self) -> Result<()> {
        match self.child.try_wait()? {
            None => Ok(()),
            Some(status) => bail!("exited with {status}: {}", self.log_tail()),
        }
    }

    /// The last lines it logged.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().rev().take(8).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join("\n")
    }
}

/// Runs the gateway or the audit service (`role`) as its own process against
/// `system`, with its own NATS user, from a configuration file written in `dir`.
pub fn service(binary: &Path, system: &System, role: &str, dir: &Path) -> Result<Process> {
    let user = match role {
        "gateway" => users::GATEWAY,
        "audit" => users::AUDIT,
        _ => bail!("no service {role}"),
    };
    let mut config = system.config.clone();
    let credentials = system.credentials(user)?;
    config.nats.url = system.url();
    config.nats.user = credentials.user;
    config.nats.password = credentials.password;
    config.telemetry.listen = String::new();
    let path = dir.join(format!("{role}.toml"));
    std::fs::write(&path, toml::to_string(&config)?)?;
    let started = std::fs::read_dir(dir)?.count();
    let log = dir.join(format!("{role}-{started}.log"));
    Process::spawn(binary, role, &[&path.display().to_string()], &[], &log)
}

/// Where a recorder holds a stored batch without acknowledging it.
#[derive(Debug, Clone, Copy)]
pub enum Hold {
    /// Once this many are stored, it hangs (for a SIGKILL).
    Hang(usize),
    /// Once this many are stored, it sends itself SIGSTOP (for a SIGCONT).
    Stop(usize),
}

/// Runs an agency's recorder (see `src/bin/fault-process.rs`) appending to
/// `out`, holding a batch as `hold` says.
pub fn recorder(
    binary: &Path,
    system: &System,
    agency: &str,
    out: &Path,
    hold: Option<Hold>,
) -> Result<Process> {
    let mut args = vec![system.url(), agency.to_owned(), out.display().to_string()];
    match hold {
        Some(Hold::Hang(n)) => args.extend([n.to_string(), "hang".into()]),
        Some(Hold::Stop(n)) => args.extend([n.to_string(), "stop".into()]),
        None => {}
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let runs = (0..).find(|n| !out.with_extension(format!("{n}.log")).exists());
    let log = out.with_extension(format!("{}.log", runs.unwrap_or_default()));
    Process::spawn(binary, "recorder", &args, &[], &log)
}

/// The ids of the batch a recorder writing `out` holds unacknowledged, once it does.
pub fn held(out: &Path) -> Option<BTreeSet<String>> {
    let text = std::fs::read_to_string(out.with_extension("held")).ok()?;
    Some(text.lines().map(str::to_owned).collect())
}
