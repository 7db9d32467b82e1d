//! A real browser for the tests: Debian's Chromium, headless, with a
//! throwaway profile, no network of its own (no sync, no component or
//! background updates, no QUIC), a fixed window and a virtual-time budget so
//! the page's scripts run and the browser exits. `tests/run.sh` installs it
//! when missing; `LIAISON_CHROMIUM` names another binary.

use anyhow::{Context as _, Result, bail};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long one browser run may take.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// A Chromium binary.
pub struct Chromium {
    path: PathBuf,
}

impl Chromium {
    /// `LIAISON_CHROMIUM`, else `/usr/bin/chromium`.
    pub fn find() -> Result<Self> {
        let path = std::env::var_os("LIAISON_CHROMIUM")
            .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
        if !path.is_file() {
            bail!(
                "no Chromium at {}: `apt-get install -y chromium` (tests/run.sh does), or set LIAISON_CHROMIUM",
                path.display()
            );
        }
        Ok(Self { path })
    }

    async fn run(&self, output: &str, url: &str) -> Result<Vec<u8>> {
        let profile = tempfile::tempdir()?;
        let mut command = tokio::process::Command::new(&self.path);
        command
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
                "--window-size=1280,900",
                "--virtual-time-budget=5000",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(output)
            .arg(url)
            .kill_on_drop(true)
            .stdin(std::process::Stdio::null());
        let out = tokio::time::timeout(RUN_TIMEOUT, command.output())
            .await
            .context("Chromium did not finish within two minutes")??;
        if !out.status.success() {
            bail!(
                "Chromium failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(out.stdout)
    }

    /// The page's DOM after its scripts ran.
    pub async fn dump_dom(&self, url: &str) -> Result<String> {
        Ok(String::from_utf8(self.run("--dump-dom", url).await?)?)
    }

    /// A screenshot of the page, as PNG, to `file`.
    pub async fn screenshot(&self, url: &str, file: &Path) -> Result<()> {
        self.run(&format!("--screenshot={}", file.display()), url)
            .await?;
        if !file.is_file() {
            bail!("Chromium wrote no screenshot to {}", file.display());
        }
        Ok(())
    }
}

/// The width and height of a PNG image, if `bytes` is one.
pub fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    let signature = b"\x89PNG\r\n\x1a\n";
    if bytes.len() < 24 || &bytes[..8] != signature || &bytes[12..16] != b"IHDR" {
        return None;
    }
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    Some((be(&bytes[16..20]), be(&bytes[20..24])))
}
