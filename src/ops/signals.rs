//! Signals: SIGINT and SIGTERM stop gracefully, SIGHUP asks for a config reload.

use tokio_util::sync::CancellationToken;

/// Cancels `cancel` on SIGINT or SIGTERM.
pub async fn stop_on_signal(cancel: CancellationToken) {
    handle_signals(cancel, None).await;
}

/// The one place signals become actions: SIGINT or SIGTERM cancel `cancel` (then this returns);
/// SIGHUP sends a reload request on `reload`, or is ignored when there is none.
pub async fn handle_signals(cancel: CancellationToken, reload: Option<tokio::sync::mpsc::UnboundedSender<()>>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut hup)) = (signal(SignalKind::terminate()), signal(SignalKind::hangup())) else {
            let _ = tokio::signal::ctrl_c().await;
            cancel.cancel();
            return;
        };
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {
                    tracing::info!("SIGINT: stopping");
                    break;
                }
                _ = term.recv() => {
                    tracing::info!("SIGTERM: stopping");
                    break;
                }
                _ = hup.recv() => match &reload {
                    Some(tx) => {
                        tracing::info!("SIGHUP: reloading the config");
                        let _ = tx.send(());
                    }
                    None => tracing::info!("SIGHUP ignored: nothing to reload"),
                },
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = reload;
        let _ = tokio::signal::ctrl_c().await;
    }
    cancel.cancel();
}
