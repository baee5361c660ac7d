//! Received bytes in blocks that are used again: every chunk the network
//! hands over is copied into a [`BLOCK_SIZE`] block, and full blocks go
//! on to the sink (the `.part`'s writer, or an upload's parts).
//!
//! Why a copy: hyper reads a body into buffers of up to ~400 kB, and a
//! chunk handed on keeps its whole buffer alive. While the sink holds
//! chunks (half a megabyte in flight to the disk, two 8 MiB parts on
//! their way to object storage), hyper must allocate new buffers, glibc
//! maps each one fresh (`main.rs` keeps its mmap threshold at 128 KiB so
//! freed memory goes back), and the kernel faults in and zeroes every
//! page: one page fault per 4 KiB received, a quarter of a large
//! transfer's CPU time (`perf`). Copied at once, a chunk is dropped as
//! soon as it came, so hyper can reuse its buffer unless it has already
//! read ahead into a new one; the blocks come back here when the sink
//! drops them (whoever holds the last reference), and the next transfer
//! takes them again. A memcpy is cheaper than a page fault per page: on
//! the way to object storage the faults fell from 276k to 68k for 1.1 GB;
//! to the disk, whose writer holds less, from about 305k to 225k for
//! 1.05 GB (`bench/README.md`).
//!
//! Invariants: bytes leave in the order they came, each once; a block
//! handed on is never written again (it is shared, immutable); at most
//! [`KEPT`] free blocks are kept, the rest go back to the system.

use std::sync::Mutex;

use bytes::Bytes;

use crate::archive::bucket::upload::PART_SIZE;

/// The size of a block. A divisor of the upload's part size, so a part
/// is whole blocks and nothing is split or copied again.
pub const BLOCK_SIZE: usize = 256 * 1024;
const _: () = assert!(PART_SIZE.is_multiple_of(BLOCK_SIZE));

/// Free blocks kept for the next transfers (64 MiB); a block freed
/// beyond them is given back to the system.
const KEPT: usize = 256;

/// The free blocks of the process.
static FREE: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// An empty block: a free one, or a new one.
fn take() -> Vec<u8> {
    FREE.lock()
        .ok()
        .and_then(|mut free| free.pop())
        .unwrap_or_else(|| Vec::with_capacity(BLOCK_SIZE))
}

/// A filled block, shared by the `Bytes` made of it; back to the free
/// blocks when the last of them is dropped.
struct Block(Vec<u8>);

impl AsRef<[u8]> for Block {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        let mut bytes = std::mem::take(&mut self.0);
        bytes.clear();
        if let Ok(mut free) = FREE.lock()
            && free.len() < KEPT
        {
            free.push(bytes);
        }
    }
}

/// One transfer's block being filled.
#[derive(Default)]
pub struct Blocks {
    filling: Vec<u8>,
}

impl Blocks {
    /// Copies from the front of `bytes` (advancing it) into the block
    /// being filled; returns the block once full. Called until it returns
    /// None, which it does once `bytes` is empty and the block is not full.
    pub fn fill(&mut self, bytes: &mut &[u8]) -> Option<Bytes> {
        if bytes.is_empty() {
            return None;
        }
        if self.filling.capacity() == 0 {
            self.filling = take();
        }
        let room = BLOCK_SIZE - self.filling.len();
        let (now, later) = bytes.split_at(room.min(bytes.len()));
        self.filling.extend_from_slice(now);
        *bytes = later;
        (self.filling.len() == BLOCK_SIZE).then(|| self.hand_on())
    }

    /// The bytes of a block not yet full, if any (the body ended or
    /// stopped). Less than half a block is copied out, and the block kept
    /// for the next body: a small file held until its commit (a thumb on
    /// its way to object storage) does not hold a whole block.
    pub fn rest(&mut self) -> Option<Bytes> {
        match self.filling.len() {
            0 => None,
            small if small < BLOCK_SIZE / 2 => {
                let rest = Bytes::copy_from_slice(&self.filling);
                self.filling.clear();
                Some(rest)
            }
            _ => Some(self.hand_on()),
        }
    }

    /// Drops the bytes of a block not yet full.
    pub fn clear(&mut self) {
        self.filling.clear();
    }

    fn hand_on(&mut self) -> Bytes {
        Bytes::from_owner(Block(std::mem::take(&mut self.filling)))
    }
}

impl Drop for Blocks {
    fn drop(&mut self) {
        if self.filling.capacity() > 0 {
            drop(Block(std::mem::take(&mut self.filling)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `chunks` through one `Blocks`; returns what came out.
    fn through(chunks: &[Vec<u8>]) -> Vec<Bytes> {
        let mut blocks = Blocks::default();
        let mut out = Vec::new();
        for chunk in chunks {
            let mut rest = chunk.as_slice();
            while let Some(block) = blocks.fill(&mut rest) {
                out.push(block);
            }
            assert!(rest.is_empty());
        }
        out.extend(blocks.rest());
        out
    }

    #[test]
    fn bytes_leave_in_order_each_once_in_whole_blocks_but_the_last() {
        // Chunks as a network gives them: small, odd, bigger than a block.
        let sizes = [1, 4096, BLOCK_SIZE - 4097, 7, 3 * BLOCK_SIZE + 5, 0, 1000];
        let mut counter = 0u32;
        let chunks: Vec<Vec<u8>> = sizes
            .iter()
            .map(|&size| {
                (0..size)
                    .map(|_| {
                        counter = counter.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                        (counter >> 16) as u8
                    })
                    .collect()
            })
            .collect();
        let out = through(&chunks);
        let (last, whole) = out.split_last().expect("bytes came out");
        assert!(whole.iter().all(|block| block.len() == BLOCK_SIZE));
        assert!(!last.is_empty() && last.len() <= BLOCK_SIZE);
        assert_eq!(out.concat(), chunks.concat());
    }

    #[test]
    fn a_rest_small_or_big_comes_out_whole() {
        for rest in [1, BLOCK_SIZE / 2 - 1, BLOCK_SIZE / 2, BLOCK_SIZE - 1] {
            let body: Vec<u8> = (0..BLOCK_SIZE + rest).map(|i| (i % 251) as u8).collect();
            let out = through(std::slice::from_ref(&body));
            assert_eq!(out.len(), 2, "rest {rest}");
            assert_eq!(out[1].len(), rest);
            assert_eq!(out.concat(), body, "rest {rest}");
        }
    }

    #[test]
    fn nothing_in_nothing_out() {
        assert!(through(&[]).is_empty());
        assert!(through(&[Vec::new()]).is_empty());
        let exact = through(&[vec![9; BLOCK_SIZE]]);
        assert_eq!(exact.len(), 1);
        assert_eq!(exact[0].len(), BLOCK_SIZE);
    }

    #[test]
    fn a_block_handed_on_stays_as_it_was_while_the_next_fills() {
        let mut blocks = Blocks::default();
        let first = vec![1u8; BLOCK_SIZE];
        let held = blocks.fill(&mut first.as_slice()).expect("a full block");
        // Dropped blocks are reused: the next fills must not touch `held`.
        for round in 0..4u8 {
            let chunk = vec![round + 2; BLOCK_SIZE];
            let mut rest = chunk.as_slice();
            drop(blocks.fill(&mut rest));
        }
        assert!(held.iter().all(|&byte| byte == 1));
    }
}
