//! Writing one streamed object: [`Upload`], from [`Store::start_upload`].
//!
//! - Local store: the bytes go straight into the file at the key, through one buffer of
//!   [`FILE_BUFFER`] bytes being filled while the one before it is written (so two at most),
//!   whatever the object's size. No multipart parts: the file is on the same disk. Durability is
//!   the publish step's (`fsync` of the file before its rename, see [`Store::publish`]).
//! - S3 and other backends: a multipart upload of `part_size` parts, at most
//!   `max_concurrent_parts` in flight, each part's buffer granted by the store's shared
//!   [`ByteBudget`] before it is filled and given back when the part is sent.
//! - S3 with `sha256_metadata` (the default): S3 takes metadata only when an upload is created,
//!   and the SHA-256 is known only after the last byte. So the download is spooled into an
//!   unnamed temporary file (`O_TMPFILE` in `storage.spool_dir`: nothing is left behind even by
//!   a crash) through two smaller buffers ([`SPOOL_BUFFER`]), and on [`Upload::finish`] the file
//!   is sent as a multipart upload straight to the final key, created with `x-amz-meta-sha256`
//!   and the content type. S3 completes a multipart upload atomically, so the key never holds a
//!   partial object, and no server-side copy is needed. The spool is hashed again as it is read
//!   back; a difference from the streamed hash aborts the upload.

use std::io::Write as _;
use std::path::PathBuf;

use bytes::{Bytes, BytesMut};
use object_store::path::Path as Key;
use object_store::{MultipartUpload, PutPayload};
use tokio::task::JoinSet;

use super::budget::{ByteBudget, Grant};
use super::{Store, StoreError};

/// The size of each of the (at most two) buffers of a local upload.
pub const FILE_BUFFER: usize = 1024 * 1024;

/// The size of each of the (at most two) buffers of a spool, and of the reads that send it.
/// Smaller than [`FILE_BUFFER`]: a spool is an unnamed temporary file that is never synced, so
/// big writes buy nothing, while 30 spooling downloads at once held 30 × 2 MiB outside the
/// store's byte budget (issue 14: 30 results into S3 peaked at 221 MiB).
pub(crate) const SPOOL_BUFFER: usize = 256 * 1024;

/// An object being written; [`Upload::finish`] makes it whole, [`Upload::abort`] removes it.
#[derive(Debug)]
pub struct Upload {
    key: Key,
    sink: Sink,
}

#[derive(Debug)]
enum Sink {
    File(FileWriter),
    Parts(PartWriter),
    Spool(FileWriter, Box<Spooled>),
}

/// Where a spooled download goes once it is complete.
#[derive(Debug)]
pub(super) struct Spooled {
    pub(super) store: Store,
    pub(super) content_type: String,
}

impl Upload {
    pub(super) fn file(key: &Key, writer: FileWriter) -> Upload {
        Upload { key: key.clone(), sink: Sink::File(writer) }
    }

    pub(super) fn parts(key: &Key, writer: PartWriter) -> Upload {
        Upload { key: key.clone(), sink: Sink::Parts(writer) }
    }

    pub(super) fn spooled(key: &Key, spool: FileWriter, then: Spooled) -> Upload {
        Upload { key: key.clone(), sink: Sink::Spool(spool, Box::new(then)) }
    }

    /// Appends `chunk`; waits while the buffers (or the budget) are full.
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), StoreError> {
        match &mut self.sink {
            Sink::File(w) | Sink::Spool(w, _) => w.write(chunk).await.map_err(write_error(&self.key)),
            Sink::Parts(w) => w.write(chunk).await.map_err(Store::err("upload part", &self.key)),
        }
    }

    /// Writes what is buffered and completes the object under its key. `sha256` is the hash of
    /// everything written (a spooled upload records it as metadata and checks the spool by it).
    pub async fn finish(self, sha256: &[u8; 32]) -> Result<(), StoreError> {
        match self.sink {
            Sink::File(w) => {
                let path = w.path.clone();
                let Err(e) = w.finish().await else { return Ok(()) };
                // A failed last write (a full disk, say) leaves no partial staging file behind.
                if let Some(path) = path {
                    let _ = blocking(move || std::fs::remove_file(path)).await;
                }
                Err(write_error(&self.key)(e))
            }
            Sink::Parts(w) => w.finish().await.map_err(Store::err("complete upload", &self.key)),
            Sink::Spool(w, then) => {
                let file = w.finish().await.map_err(write_error(&self.key))?;
                send_spool(file, &self.key, *then, sha256).await
            }
        }
    }

    /// Stops the upload and removes what was written.
    pub async fn abort(self) {
        let failed = match self.sink {
            Sink::File(w) | Sink::Spool(w, _) => w.abort().await.err().map(|e| e.to_string()),
            Sink::Parts(w) => w.abort().await.err().map(|e| e.to_string()),
        };
        if let Some(e) = failed {
            let key = &self.key;
            tracing::warn!(key = %key, error = %crate::telemetry::Escaped(&e), "could not abort an interrupted upload; the next start cleans it");
        }
    }
}

fn write_error(key: &Key) -> impl FnOnce(std::io::Error) -> StoreError {
    let key = key.to_string();
    move |source| StoreError::Write { key, source }
}

/// A write on a blocking thread, which hands back the file and the buffer it wrote.
type Write = tokio::task::JoinHandle<std::io::Result<(std::fs::File, Vec<u8>)>>;

/// A file written through two alternating buffers: one fills while the other is written on a
/// blocking thread.
#[derive(Debug)]
pub(super) struct FileWriter {
    /// The file's name; `None` for an unnamed temporary file, which vanishes when closed.
    path: Option<PathBuf>,
    /// The file, when no write is running.
    file: Option<std::fs::File>,
    /// The buffer being filled.
    buf: Vec<u8>,
    /// The write running, which hands back the file and its (emptied) buffer.
    pending: Option<Write>,
    /// Bytes handed to writes so far.
    written: u64,
    /// Whether each written range is handed to the disk at once (`sync_file_range`), so that
    /// the fsync before publishing finds little left to write. Not for a spool, never synced.
    writeback: bool,
    /// The size of each buffer: [`FILE_BUFFER`], or [`SPOOL_BUFFER`] for a spool.
    capacity: usize,
}

impl FileWriter {
    /// Creates the file at `path` (and its folders); it must not exist yet.
    pub(super) async fn create(path: PathBuf) -> std::io::Result<FileWriter> {
        let at = path.clone();
        let file = blocking(move || {
            if let Some(parent) = at.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::File::create_new(&at)
        })
        .await?;
        Ok(FileWriter::over(Some(path), file, true, FILE_BUFFER))
    }

    /// An unnamed temporary file in `dir` (`O_TMPFILE` where the file system has it).
    pub(super) async fn spool(dir: PathBuf) -> std::io::Result<FileWriter> {
        let file = blocking(move || tempfile::tempfile_in(dir)).await?;
        Ok(FileWriter::over(None, file, false, SPOOL_BUFFER))
    }

    fn over(path: Option<PathBuf>, file: std::fs::File, writeback: bool, capacity: usize) -> FileWriter {
        FileWriter {
            path,
            file: Some(file),
            buf: Vec::with_capacity(capacity),
            pending: None,
            written: 0,
            writeback,
            capacity,
        }
    }

    async fn write(&mut self, mut data: &[u8]) -> std::io::Result<()> {
        while !data.is_empty() {
            let n = (self.capacity - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.buf.len() == self.capacity {
                self.flush().await?;
            }
        }
        Ok(())
    }

    /// Waits for the running write, if any; then the file is in `self.file`.
    async fn settle(&mut self) -> std::io::Result<Vec<u8>> {
        match self.pending.take() {
            Some(write) => {
                let (file, mut spare) = write.await.map_err(std::io::Error::other)??;
                spare.clear();
                self.file = Some(file);
                Ok(spare)
            }
            None => Ok(Vec::with_capacity(self.capacity)),
        }
    }

    /// Hands the filled buffer to a blocking write, after the one before it has finished.
    async fn flush(&mut self) -> std::io::Result<()> {
        let spare = self.settle().await?;
        let full = std::mem::replace(&mut self.buf, spare);
        let file = self.file.take().ok_or_else(|| std::io::Error::other("the file is gone"))?;
        let (at, writeback) = (self.written, self.writeback);
        self.written += full.len() as u64;
        self.pending = Some(tokio::task::spawn_blocking(move || {
            (&file).write_all(&full)?;
            if writeback {
                start_writeback(&file, at, full.len());
            }
            Ok((file, full))
        }));
        Ok(())
    }

    /// Writes the rest and returns the file (not fsynced: the publish step does that).
    pub(super) async fn finish(mut self) -> std::io::Result<std::fs::File> {
        if !self.buf.is_empty() {
            self.flush().await?;
        }
        self.settle().await?;
        self.file.take().ok_or_else(|| std::io::Error::other("the file is gone"))
    }

    async fn abort(mut self) -> std::io::Result<()> {
        let _ = self.settle().await;
        drop(self.file.take());
        let Some(path) = self.path.clone() else { return Ok(()) };
        match blocking(move || std::fs::remove_file(path)).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// Starts writing `len` bytes at `at` of `file` to the disk without waiting for them
/// (`sync_file_range(SYNC_FILE_RANGE_WRITE)`): the disk works while the download goes on, instead
/// of all at the fsync. Only a hint: durability is still the fsync's, so a failure is ignored.
fn start_writeback(file: &std::fs::File, at: u64, len: usize) {
    use std::os::fd::AsRawFd as _;
    let (Ok(at), Ok(len)) = (libc::off64_t::try_from(at), libc::off64_t::try_from(len)) else { return };
    // SAFETY: the descriptor belongs to `file`, which is open for the whole call; the call
    // takes no pointers.
    let _ = unsafe { libc::sync_file_range(file.as_raw_fd(), at, len, libc::SYNC_FILE_RANGE_WRITE) };
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> std::io::Result<T> + Send + 'static) -> std::io::Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(std::io::Error::other)?
}

/// Sends the complete spool `file` as a multipart upload to `key`, created with the object's
/// SHA-256 and content type; re-hashes what it reads and aborts on a difference.
async fn send_spool(file: std::fs::File, key: &Key, then: Spooled, sha256: &[u8; 32]) -> Result<(), StoreError> {
    use sha2::Digest as _;
    let mut writer = then.store.part_writer(key, &then.content_type, Some(sha256)).await?;
    let file = std::sync::Arc::new(file);
    let (mut offset, mut hasher) = (0u64, sha2::Sha256::new());
    let mut buf = Vec::with_capacity(SPOOL_BUFFER);
    loop {
        let (from, at) = (std::sync::Arc::clone(&file), offset);
        let read = blocking(move || {
            use std::os::unix::fs::FileExt as _;
            buf.resize(SPOOL_BUFFER, 0);
            let n = from.read_at(&mut buf, at)?;
            buf.truncate(n);
            Ok(buf)
        })
        .await;
        let chunk = match read {
            Ok(chunk) => chunk,
            Err(e) => {
                let _ = writer.abort().await;
                return Err(write_error(key)(e));
            }
        };
        if chunk.is_empty() {
            break;
        }
        hasher.update(&chunk);
        offset += chunk.len() as u64;
        if let Err(e) = writer.write(&chunk).await {
            let _ = writer.abort().await;
            return Err(Store::err("upload part", key)(e));
        }
        buf = chunk;
    }
    let reread: [u8; 32] = hasher.finalize().into();
    if &reread != sha256 {
        let _ = writer.abort().await;
        return Err(StoreError::SpoolChanged { key: key.to_string() });
    }
    let Err(e) = writer.finish().await else { return Ok(()) };
    // The answer to a completion can be lost after the server made the object (a timeout while
    // a slow server assembles a large one, a dropped connection): the retried completion then
    // finds no such upload. The key holding this size and this SHA-256 is the object whole.
    if then.store.holds(key, offset, sha256).await {
        tracing::info!(key = %key, "the answer to the upload's completion was lost; the object is whole at its key");
        return Ok(());
    }
    Err(Store::err("complete upload", key)(e))
}

/// A multipart upload whose part buffers are granted by a shared [`ByteBudget`].
#[derive(Debug)]
pub(super) struct PartWriter {
    upload: Box<dyn MultipartUpload>,
    part_size: usize,
    max_parts: usize,
    budget: ByteBudget,
    /// The part being filled, and the grant for its bytes.
    buf: BytesMut,
    grant: Option<Grant>,
    /// Parts being sent; each holds its grant until it is done.
    sending: JoinSet<object_store::Result<()>>,
}

impl PartWriter {
    pub(super) fn new(
        upload: Box<dyn MultipartUpload>,
        part_size: usize,
        max_parts: usize,
        budget: ByteBudget,
    ) -> PartWriter {
        PartWriter {
            upload,
            part_size: part_size.max(1),
            max_parts: max_parts.max(1),
            budget,
            buf: BytesMut::new(),
            grant: None,
            sending: JoinSet::new(),
        }
    }

    async fn write(&mut self, mut data: &[u8]) -> object_store::Result<()> {
        while !data.is_empty() {
            if self.grant.is_none() {
                self.reserve().await?;
            }
            let n = (self.part_size - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.buf.len() == self.part_size {
                self.send();
            }
        }
        Ok(())
    }

    /// Waits for room (fewer than `max_parts` parts sending, and the budget's grant for one more
    /// part), then allocates the part's buffer. Sent parts are reaped meanwhile, so a failed one
    /// stops the upload at once.
    async fn reserve(&mut self) -> object_store::Result<()> {
        while self.sending.len() >= self.max_parts {
            if let Some(done) = self.sending.join_next().await {
                joined(done)?;
            }
        }
        let grant = loop {
            tokio::select! {
                biased;
                Some(done) = self.sending.join_next(), if !self.sending.is_empty() => joined(done)?,
                grant = self.budget.acquire(self.part_size) => break grant,
            }
        };
        self.grant = Some(grant);
        self.buf = BytesMut::with_capacity(self.part_size);
        Ok(())
    }

    /// Sends the buffered part on its own task, which gives the grant back when it is done.
    fn send(&mut self) {
        let part: Bytes = std::mem::take(&mut self.buf).freeze();
        let grant = self.grant.take();
        let sending = self.upload.put_part(PutPayload::from(part));
        self.sending.spawn(async move {
            let sent = sending.await;
            drop(grant);
            sent
        });
    }

    async fn finish(mut self) -> object_store::Result<()> {
        if !self.buf.is_empty() {
            self.send();
        }
        while let Some(done) = self.sending.join_next().await {
            if let Err(e) = joined(done) {
                self.sending.shutdown().await;
                let _ = self.upload.abort().await;
                return Err(e);
            }
        }
        if let Err(e) = self.upload.complete().await {
            let _ = self.upload.abort().await;
            return Err(e);
        }
        Ok(())
    }

    async fn abort(mut self) -> object_store::Result<()> {
        self.sending.shutdown().await;
        self.upload.abort().await
    }
}

fn joined(done: Result<object_store::Result<()>, tokio::task::JoinError>) -> object_store::Result<()> {
    done.map_err(|e| object_store::Error::Generic { store: "upload", source: Box::new(e) })?
}
