//! The bytes that uploads may hold in memory at once, shared by every download of a daemon
//! (`[storage] max_bytes_in_flight`).
//!
//! A multipart upload buffers a whole part before it sends it, and sends several at once: about
//! `part_size * (max_concurrent_parts + 1)` per download. Thirty downloads at once would hold
//! thirty times that. So a part's buffer is allocated only once the budget grants its bytes, and
//! the grant is returned when the part's upload has finished (or failed), not before. A download
//! that cannot get a grant waits (its HTTP body is not read meanwhile, so TCP holds the bytes).
//!
//! No download ever waits for a grant while holding one for a buffer it has not sent: the only
//! grants it holds while waiting belong to parts already sent, which finish on their own tasks.
//! So a budget of one part still lets every download finish, one part at a time.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Grants are counted in KiB, so that one grant (a `u32` of permits) can cover a 5 GiB part.
const UNIT: usize = 1024;

/// A shared budget of bytes; clones share it.
#[derive(Debug, Clone)]
pub struct ByteBudget {
    permits: Arc<Semaphore>,
    units: u32,
}

/// Bytes granted by a [`ByteBudget`]; dropping it gives them back.
#[derive(Debug)]
pub struct Grant {
    _permit: OwnedSemaphorePermit,
}

impl ByteBudget {
    /// A budget of `bytes` (at least one KiB, at most 4 TiB).
    pub fn new(bytes: usize) -> ByteBudget {
        let units = u32::try_from(bytes.div_ceil(UNIT)).unwrap_or(u32::MAX).max(1);
        let units = units.min(u32::try_from(Semaphore::MAX_PERMITS).unwrap_or(u32::MAX));
        ByteBudget { permits: Arc::new(Semaphore::new(units as usize)), units }
    }

    /// The whole budget in bytes.
    pub fn total(&self) -> usize {
        self.units as usize * UNIT
    }

    /// The bytes not granted at the moment.
    pub fn available(&self) -> usize {
        self.permits.available_permits() * UNIT
    }

    /// Waits until `bytes` (rounded up to a KiB; a request larger than the whole budget asks
    /// for the whole budget) can be granted.
    pub async fn acquire(&self, bytes: usize) -> Grant {
        let units = u32::try_from(bytes.div_ceil(UNIT)).unwrap_or(u32::MAX).clamp(1, self.units);
        // The semaphore is never closed, so this cannot fail.
        match Arc::clone(&self.permits).acquire_many_owned(units).await {
            Ok(permit) => Grant { _permit: permit },
            Err(_) => unreachable!("the budget's semaphore is never closed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn grants_are_held_until_dropped_and_never_exceed_the_total() {
        let budget = ByteBudget::new(3 * UNIT);
        let a = budget.acquire(2 * UNIT).await;
        assert_eq!(budget.available(), UNIT);
        let waiting = tokio::spawn({
            let budget = budget.clone();
            async move { budget.acquire(2 * UNIT).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "only one KiB is left, so a 2 KiB grant waits");
        drop(a);
        let b = waiting.await.expect("join");
        assert_eq!(budget.available(), UNIT);
        drop(b);
        // A request above the whole budget gets the whole budget, so it can still proceed.
        let all = budget.acquire(10 * UNIT).await;
        assert_eq!(budget.available(), 0);
        drop(all);
        assert_eq!(budget.available(), budget.total());
    }
}
