//! The systemd notify protocol through `sd-notify`: `READY=1` once the catalogue is open,
//! migrated and reconciled, `WATCHDOG=1` from the supervisor's loop, `STATUS=` lines for
//! `systemctl status`, `RELOADING=1` around a reload and `STOPPING=1` on stop. Without
//! `NOTIFY_SOCKET` every call does nothing.
//!
//! Sending on the notify socket blocks when the receiver's queue is full, so messages go through
//! a bounded queue to one thread of their own: the async runtime never waits on systemd, and a
//! message that finds the queue full is dropped (the next heartbeat sends a fresh one).

use crate::telemetry::Escaped;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::Duration;

use sd_notify::NotifyState;

/// Messages waiting for the sender thread at most.
const QUEUE: usize = 64;

enum Message {
    Ready,
    Watchdog,
    Status(String),
    Reloading,
    Stopping,
    /// Answer on the channel once everything queued before has been sent.
    Flush(SyncSender<()>),
}

/// Sends state changes to the service manager.
#[derive(Debug, Clone)]
pub struct Notifier {
    watchdog: Option<Duration>,
    queue: Option<SyncSender<Message>>,
}

impl Notifier {
    /// A notifier configured from the environment (`NOTIFY_SOCKET`, `WATCHDOG_USEC`, `WATCHDOG_PID`).
    pub fn from_env() -> Notifier {
        let watchdog = sd_notify::watchdog_enabled().filter(|d| !d.is_zero());
        let queue = std::env::var_os("NOTIFY_SOCKET").and_then(|_| {
            let (tx, rx) = sync_channel(QUEUE);
            match std::thread::Builder::new().name("sd-notify".to_owned()).spawn(move || send_all(&rx)) {
                Ok(_) => Some(tx),
                Err(e) => {
                    tracing::warn!(error = %Escaped(&e), "cannot start the systemd notifier; systemd will not hear from vidkeep");
                    None
                }
            }
        });
        Notifier { watchdog, queue }
    }

    /// How often to send `WATCHDOG=1`: half of `WatchdogSec`, if the watchdog is on.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog.map(|d| d / 2)
    }

    fn send(&self, message: Message) {
        let Some(queue) = &self.queue else { return };
        match queue.try_send(message) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => tracing::debug!("systemd is not reading notifications; one dropped"),
            Err(TrySendError::Disconnected(_)) => tracing::debug!("the systemd notifier thread is gone"),
        }
    }

    /// Startup is complete.
    pub fn ready(&self) {
        self.send(Message::Ready);
    }

    /// The main loop is alive.
    pub fn watchdog(&self) {
        self.send(Message::Watchdog);
    }

    /// A status line for `systemctl status`.
    pub fn status(&self, line: &str) {
        self.send(Message::Status(line.to_owned()));
    }

    /// A config reload begins; [`Notifier::ready`] ends it.
    pub fn reloading(&self) {
        self.send(Message::Reloading);
    }

    /// Shutdown has begun.
    pub fn stopping(&self) {
        self.send(Message::Stopping);
    }

    /// Waits up to `timeout` until every message queued so far has been sent (before exiting).
    pub fn flush(&self, timeout: Duration) {
        let Some(queue) = &self.queue else { return };
        let (ack, done) = sync_channel(1);
        if queue.send(Message::Flush(ack)).is_ok() {
            let _ = done.recv_timeout(timeout);
        }
    }
}

/// The sender thread: one datagram per message, in order.
fn send_all(queue: &Receiver<Message>) {
    for message in queue {
        let result = match &message {
            Message::Ready => sd_notify::notify(&[NotifyState::Ready]),
            Message::Watchdog => sd_notify::notify(&[NotifyState::Watchdog]),
            Message::Status(line) => sd_notify::notify(&[NotifyState::Status(line)]),
            Message::Reloading => match NotifyState::monotonic_usec_now() {
                Ok(now) => sd_notify::notify(&[NotifyState::Reloading, now]),
                Err(_) => sd_notify::notify(&[NotifyState::Reloading]),
            },
            Message::Stopping => sd_notify::notify(&[NotifyState::Stopping]),
            Message::Flush(ack) => {
                let _ = ack.send(());
                Ok(())
            }
        };
        if let Err(e) = result {
            tracing::warn!(error = %Escaped(&e), "cannot notify the service manager");
        }
    }
}
