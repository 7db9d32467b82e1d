//! One in-process service of [`super::System`] on its own runtime and
//! thread, as if in its own process: stopped, it drains its work; killed,
//! its tasks and NATS connection are dropped at once, as in a crash.

use anyhow::{Result, anyhow};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

/// A service running on its own runtime and thread, as if in its own
/// process: stopping it drains its work; killing it drops every task and its
/// NATS connection at once, as a crash would.
pub(super) struct Running {
    stop: CancellationToken,
    kill: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    /// Starts `body` on a new runtime; `body` reports on `ready` once started.
    pub(super) async fn spawn<F, Fut>(name: &'static str, body: F) -> Result<Self>
    where
        F: FnOnce(CancellationToken, oneshot::Sender<Result<()>>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        let stop = CancellationToken::new();
        let (kill, killed) = oneshot::channel::<()>();
        let (ready, is_ready) = oneshot::channel();
        let token = stop.clone();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name(name)
                    .enable_all()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = ready.send(Err(anyhow!("{name} runtime: {e}")));
                        return;
                    }
                };
                runtime.block_on(async {
                    tokio::select! {
                        () = body(token, ready) => {}
                        _ = killed => {}
                    }
                });
                runtime.shutdown_background();
            })?;
        let running = Self {
            stop,
            kill: Some(kill),
            thread: Some(thread),
        };
        match is_ready.await {
            Ok(Ok(())) => Ok(running),
            Ok(Err(e)) => Err(e.context(name)),
            Err(_) => Err(anyhow!("{name} ended while starting")),
        }
    }

    async fn join(mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }

    pub(super) async fn stop(self) {
        self.stop.cancel();
        self.join().await;
    }

    pub(super) async fn kill(mut self) {
        if let Some(kill) = self.kill.take() {
            let _ = kill.send(());
        }
        self.join().await;
    }
}
