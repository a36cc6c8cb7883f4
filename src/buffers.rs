//! Byte buffers lent to other threads by `Arc` and reused once they are
//! given back: the journal's read blocks (lent to the decoding workers) and
//! a download's chunks (lent to the hashers). Fresh buffers each time cost
//! page faults, and freed ones stayed in the allocator's arenas.

use std::collections::VecDeque;
use std::sync::Arc;

/// Buffers lent out, oldest first. Their borrowers finish in the order the
/// buffers were lent, so only the oldest is looked at for reuse.
pub struct LentBuffers {
    lent: VecDeque<Arc<Vec<u8>>>,
    /// At most this many are remembered; older ones are left to their
    /// borrowers to free.
    keep: usize,
}

impl LentBuffers {
    pub fn new(keep: usize) -> Self {
        LentBuffers { lent: VecDeque::new(), keep }
    }

    /// Lends `buffer`, remembering it for reuse.
    pub fn lend(&mut self, buffer: Vec<u8>) -> Arc<Vec<u8>> {
        let buffer = Arc::new(buffer);
        self.lent.push_back(Arc::clone(&buffer));
        if self.lent.len() > self.keep {
            self.lent.pop_front();
        }
        buffer
    }

    /// An empty buffer: the oldest one no borrower holds any more, or a new
    /// one of `capacity` bytes.
    pub fn spare(&mut self, capacity: usize) -> Vec<u8> {
        if self.lent.front().is_some_and(|oldest| Arc::strong_count(oldest) == 1)
            && let Some(mut spare) = self.lent.pop_front().and_then(|oldest| Arc::try_unwrap(oldest).ok())
        {
            spare.clear();
            return spare;
        }
        Vec::with_capacity(capacity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_is_reused_once_its_borrower_lets_go() {
        let mut buffers = LentBuffers::new(4);
        let lent = buffers.lend(b"first".to_vec());
        let fresh = buffers.spare(64);
        assert!(fresh.is_empty() && fresh.capacity() >= 64, "still borrowed: a new one");
        drop(lent);
        let reused = buffers.spare(64);
        assert!(reused.is_empty() && reused.capacity() >= 5, "given back: reused, emptied");
        assert!(buffers.lent.is_empty());
    }

    #[test]
    fn at_most_keep_buffers_are_remembered() {
        let mut buffers = LentBuffers::new(2);
        let held: Vec<_> = (0..5).map(|n| buffers.lend(vec![n])).collect();
        assert_eq!(buffers.lent.len(), 2);
        assert_eq!(buffers.lent.front().map(|b| b[0]), Some(3));
        drop(held);
    }
}
