//! The UI's read-only catalogue connections: a few, each lent to one read at a time, so the two
//! reads of a grid page (its listing and its filter menus) run at once, and one person's slow
//! search does not hold up another's page. Measured at 1,000,000 jobs, a page with menus took
//! the sum of the two reads on one connection (issue 14). Connections past the first are opened
//! when a read finds none free, so an idle daemon holds one.

use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::catalog::{Catalog, CatalogError};

/// How many connections `serve` and the daemon open for the UI: the grid's two reads at once.
pub const UI_READERS: usize = 2;

/// Opens one more read-only connection to the same catalogue.
pub(super) type Opener = Box<dyn Fn() -> Result<Catalog, CatalogError> + Send + Sync>;

/// Connections waiting to be lent, and one permit per connection there may be (open or not).
pub(super) struct Readers {
    free: Mutex<Vec<Catalog>>,
    ready: Arc<Semaphore>,
    /// Opens the connections past those given, when a read finds none free.
    open: OnceLock<Opener>,
}

/// A connection lent to one read; given back when dropped, even by a read that panicked (the
/// connection only reads, so nothing of the read is left in it).
struct Lent<'a> {
    readers: &'a Readers,
    catalog: Option<Catalog>,
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        if let Some(catalog) = self.catalog.take() {
            self.readers.free.lock().unwrap_or_else(|e| e.into_inner()).push(catalog);
        }
    }
}

/// Why a read did not run.
#[derive(Debug)]
pub(super) enum ReadFailure {
    /// The read's own error.
    Catalog(CatalogError),
    /// The read panicked, or the pool is gone.
    Internal(String),
}

impl Readers {
    pub(super) fn new(first: Catalog) -> Readers {
        Readers { free: Mutex::new(vec![first]), ready: Arc::new(Semaphore::new(1)), open: OnceLock::new() }
    }

    /// Allows up to `max` connections in all, those past the first opened by `open` when a read
    /// needs one (once: a second call changes nothing).
    pub(super) fn grow(&self, max: usize, open: Opener) {
        if self.open.set(open).is_ok() {
            self.ready.add_permits(max.saturating_sub(1));
        }
    }

    /// Runs `f` on a free connection on the blocking pool, waiting for one if all are lent. The
    /// permit and the connection go with the blocking task, so a request dropped mid-read (a
    /// client gone) does not let another read take a connection still in use.
    pub(super) async fn read<R: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Catalog) -> Result<R, CatalogError> + Send + 'static,
    ) -> Result<R, ReadFailure> {
        let permit: OwnedSemaphorePermit =
            Arc::clone(&self.ready).acquire_owned().await.map_err(|e| ReadFailure::Internal(e.to_string()))?;
        let readers = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let free = readers.free.lock().unwrap_or_else(|e| e.into_inner()).pop();
            // None free under a permit: this read is the first to need one more connection.
            let catalog = match (free, readers.open.get()) {
                (Some(catalog), _) => catalog,
                (None, Some(open)) => open().map_err(ReadFailure::Catalog)?,
                (None, None) => return Err(ReadFailure::Internal("no free catalogue connection".into())),
            };
            let lent = Lent { readers: &readers, catalog: Some(catalog) };
            match &lent.catalog {
                Some(catalog) => f(catalog).map_err(ReadFailure::Catalog),
                None => Err(ReadFailure::Internal("no catalogue connection".into())),
            }
        })
        .await
        .map_err(|e| ReadFailure::Internal(e.to_string()))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(dir: &std::path::Path) -> Catalog {
        Catalog::open_read_only(&dir.join("c.sqlite")).expect("reader")
    }

    /// With two connections, a read that waits does not hold up another: the second read ends
    /// while the first still holds its connection (with one connection this would never end).
    /// The second connection is opened only then.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_slow_read_does_not_hold_up_another_and_a_panic_gives_its_connection_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        drop(Catalog::open(&dir.path().join("c.sqlite")).expect("create"));
        let readers = Arc::new(Readers::new(reader(dir.path())));
        let path = dir.path().to_path_buf();
        readers.grow(2, Box::new(move || Catalog::open_read_only(&path.join("c.sqlite"))));
        assert!(readers.read(|c| c.change_stamp()).await.is_ok());
        assert_eq!(readers.free.lock().expect("lock").len(), 1, "one read at a time needs one connection");
        let (release, released) = std::sync::mpsc::channel::<()>();
        let (holding, held) = tokio::sync::oneshot::channel::<()>();
        let slow = tokio::spawn({
            let readers = Arc::clone(&readers);
            async move {
                readers
                    .read(move |c| {
                        holding.send(()).expect("holding");
                        released.recv().expect("released");
                        c.change_stamp()
                    })
                    .await
            }
        });
        held.await.expect("the slow read holds a connection");
        let quick = tokio::time::timeout(std::time::Duration::from_secs(30), readers.read(|c| c.change_stamp()))
            .await
            .expect("the second connection answers while the first is busy");
        assert!(quick.is_ok());
        release.send(()).expect("release");
        assert!(slow.await.expect("joined").is_ok());

        // A panicking read fails alone; both connections still serve.
        let failed = readers.read(|_| -> Result<(), CatalogError> { panic!("a bug in a page") }).await;
        assert!(matches!(failed, Err(ReadFailure::Internal(_))));
        let both = futures::future::join(readers.read(|c| c.change_stamp()), readers.read(|c| c.change_stamp())).await;
        assert!(both.0.is_ok() && both.1.is_ok());
        assert_eq!(readers.free.lock().expect("lock").len(), 2);
    }
}
