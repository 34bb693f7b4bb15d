//! The signals that end a client: SIGTERM (`kill`), SIGHUP (the terminal was closed) and SIGINT (Ctrl-C
//! from outside the terminal, or in a script). Caught instead of left to their default — which ends the
//! process on the spot — so the terminal is put back (raw mode off, main screen) and the server hears
//! `exit` before the client goes.

/// Waits for any of the signals above; created once and polled in the client's loop.
pub struct Ending {
    #[cfg(unix)]
    streams: Vec<tokio::signal::unix::Signal>,
}

impl Ending {
    pub fn new() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let streams = [
                SignalKind::terminate(),
                SignalKind::hangup(),
                SignalKind::interrupt(),
            ]
            .into_iter()
            .filter_map(|kind| signal(kind).ok())
            .collect();
            Self { streams }
        }
        #[cfg(not(unix))]
        Self {}
    }

    /// Completes when one of the signals arrives.
    pub async fn recv(&mut self) {
        #[cfg(unix)]
        {
            if self.streams.is_empty() {
                std::future::pending::<()>().await;
            }
            let waits = self.streams.iter_mut().map(|s| Box::pin(s.recv()));
            futures::future::select_all(waits).await;
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

impl Default for Ending {
    fn default() -> Self {
        Self::new()
    }
}
