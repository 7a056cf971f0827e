//! The lane scheduler: keeps every SIMD lane busy with one message, reads
//! each message a strip at a time, pads it, and hands the kernel the same
//! number of whole blocks from every lane.
// Only the x86-64 kernels use it; elsewhere every message goes to `md-5`.
#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]

use std::io;

use crate::{Message, STRIP};

const BLOCK: usize = 64;
/// MD5's initial state (RFC 1321, 3.3).
const INIT: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];

/// One SIMD lane's message and the blocks read for it.
struct Lane {
    /// The message it hashes (an index into the caller's list).
    message: Option<usize>,
    /// The next byte of the message to read.
    offset: u64,
    /// Read blocks: `buf[start..end]`, a whole number of blocks.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// The padding is in `buf`: once `start == end` the digest is ready.
    padded: bool,
}

impl Lane {
    fn new() -> Self {
        Self {
            message: None,
            offset: 0,
            // A strip and at most two blocks of padding.
            buf: vec![0; STRIP + 2 * BLOCK],
            start: 0,
            end: 0,
            padded: false,
        }
    }

    /// Reads the next strip of `message`; when it reaches the end, appends
    /// MD5's padding (0x80, zeros, the bit length) so the lane holds whole
    /// blocks only.
    fn refill<M: Message + ?Sized>(&mut self, message: &M) -> io::Result<()> {
        let len = message.byte_len();
        let take = usize::try_from(len - self.offset).map_or(STRIP, |r| r.min(STRIP));
        message.read_exact_at(self.offset, &mut self.buf[..take])?;
        self.offset += take as u64;
        let mut end = take;
        if self.offset == len {
            self.buf[end] = 0x80;
            end += 1;
            let zeros = (BLOCK - (end + 8) % BLOCK) % BLOCK;
            self.buf[end..end + zeros].fill(0);
            end += zeros;
            self.buf[end..end + 8].copy_from_slice(&len.wrapping_mul(8).to_le_bytes());
            end += 8;
            self.padded = true;
        }
        debug_assert_eq!(end % BLOCK, 0);
        self.start = 0;
        self.end = end;
        Ok(())
    }
}

/// Hashes `messages` `N` at a time with `compress`, which runs MD5's block
/// function over the same number of blocks of each lane.
pub(crate) fn digest_all<const N: usize, M: Message>(
    compress: impl Fn(&mut [[u32; N]; 4], &[&[u8]; N]),
    messages: &[M],
) -> Vec<io::Result<[u8; 16]>> {
    let mut digests: Vec<Option<io::Result<[u8; 16]>>> = messages.iter().map(|_| None).collect();
    let mut lanes: Vec<Lane> = (0..N.min(messages.len())).map(|_| Lane::new()).collect();
    let mut state = [[0u32; N]; 4];
    let mut next = 0;
    loop {
        // Every lane either gets whole blocks to hash or stays idle.
        for (i, lane) in lanes.iter_mut().enumerate() {
            loop {
                let Some(m) = lane.message else {
                    if next == messages.len() {
                        break;
                    }
                    *lane = Lane {
                        message: Some(next),
                        offset: 0,
                        buf: std::mem::take(&mut lane.buf),
                        start: 0,
                        end: 0,
                        padded: false,
                    };
                    for (word, init) in state.iter_mut().zip(INIT) {
                        word[i] = init;
                    }
                    next += 1;
                    continue;
                };
                if lane.start < lane.end {
                    break;
                }
                if lane.padded {
                    digests[m] = Some(Ok(digest_of(&state, i)));
                    lane.message = None;
                    continue;
                }
                if let Err(err) = lane.refill(&messages[m]) {
                    digests[m] = Some(Err(err));
                    lane.message = None;
                }
            }
        }
        let busy = lanes.iter().filter(|l| l.message.is_some());
        let Some(blocks) = busy.map(|l| (l.end - l.start) / BLOCK).min() else {
            break;
        };
        let bytes = blocks * BLOCK;
        // An idle lane hashes a busy lane's bytes; its state is never read.
        let Some(filler) = lanes.iter().find(|l| l.message.is_some()) else {
            break;
        };
        let filler = &filler.buf[filler.start..filler.start + bytes];
        let inputs: [&[u8]; N] = std::array::from_fn(|i| match lanes.get(i) {
            Some(lane) if lane.message.is_some() => &lane.buf[lane.start..lane.start + bytes],
            _ => filler,
        });
        compress(&mut state, &inputs);
        for lane in lanes.iter_mut().filter(|l| l.message.is_some()) {
            lane.start += bytes;
        }
    }
    digests
        .into_iter()
        .map(|d| d.unwrap_or_else(|| Err(io::Error::other("message not hashed"))))
        .collect()
}

/// Lane `i`'s digest: the state words, little-endian.
fn digest_of<const N: usize>(state: &[[u32; N]; 4], i: usize) -> [u8; 16] {
    let mut digest = [0; 16];
    for (out, word) in digest.chunks_exact_mut(4).zip(state) {
        out.copy_from_slice(&word[i].to_le_bytes());
    }
    digest
}
