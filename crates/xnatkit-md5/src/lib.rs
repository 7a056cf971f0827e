//! `xnatkit-md5`: the MD5 of many independent messages at once.
//!
//! MD5 is serial within one message (each 64-byte block needs the state the
//! previous one left), so one stream runs at about 600 MB/s however wide
//! the CPU's vectors are. An export, though, verifies hundreds of files
//! against the server's MD5. This crate hashes up to 16 of them together,
//! one message per 32-bit SIMD lane: 16 lanes with AVX-512F (which has a
//! rotate, `vprold`, and a three-input logic instruction, `vpternlogd`, that
//! makes each of MD5's boolean functions one instruction) or 8 with AVX2.
//! The backend is chosen at run time ([`Backend::best`]); without either
//! (or off x86-64) messages are hashed one by one with the `md-5` crate.
//!
//! Messages are read through [`Message`] — a byte slice, or a file prefix
//! ([`FilePrefix`]) read back with positioned reads — a strip at a time per
//! lane, so memory stays at about 16 × 32 KiB whatever their sizes. A lane
//! that finishes its message takes the next one, so messages of unequal
//! lengths and more messages than lanes need nothing from the caller.
//!
//! Why not a crate: the mature MD5 crates (`md-5`, `md5`) hash one stream;
//! the multi-buffer ones are young (`md5-many`, a single-author
//! 0.1.0-alpha, with its own SIMD layer, `fearless_simd`, and several
//! schedulers) or not Rust (`minio/md5-simd`, Intel's `isa-l_crypto`). Here the 64 MD5 steps are
//! written once, as a macro over a lane vector type, and instantiated for
//! AVX-512F and AVX2 (`src/x86.rs`, the only file with `unsafe`); the lane
//! scheduler (`src/lanes.rs`) is safe code. Every backend the CPU has is
//! checked against `md-5` (see the tests).
//!
//! ```
//! use xnatkit_md5::{Backend, digest_all};
//!
//! let messages: [&[u8]; 3] = [b"", b"abc", &[7u8; 100_000]];
//! let digests = digest_all(&messages);
//! assert_eq!(
//!     digests[1].as_ref().map(|d| to_hex(d)).ok(),
//!     Some("900150983cd24fb0d6963f7d28e17f72".to_owned())
//! );
//! // Every backend gives the same answers.
//! for backend in Backend::available() {
//!     let again = backend.digest_all(&messages);
//!     assert_eq!(format!("{again:?}"), format!("{digests:?}"));
//! }
//! # fn to_hex(d: &[u8; 16]) -> String { d.iter().map(|b| format!("{b:02x}")).collect() }
//! ```

use std::fs::File;
use std::io;

use md5::{Digest, Md5};

mod lanes;
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod x86;

/// The bytes read per message at a time: 16 lanes × 32 KiB stay in L2.
const STRIP: usize = 32 * 1024;

/// One message to hash: its length and a way to read any part of it.
pub trait Message {
    /// The message's length in bytes.
    fn byte_len(&self) -> u64;
    /// Fills `buf` with the bytes at `offset..offset + buf.len()`.
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
}

impl Message for [u8] {
    fn byte_len(&self) -> u64 {
        self.len() as u64
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let start = usize::try_from(offset).map_err(|_| io::ErrorKind::UnexpectedEof)?;
        let bytes = start
            .checked_add(buf.len())
            .and_then(|end| self.get(start..end))
            .ok_or(io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(bytes);
        Ok(())
    }
}

impl<T: Message + ?Sized> Message for &T {
    fn byte_len(&self) -> u64 {
        (**self).byte_len()
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        (**self).read_exact_at(offset, buf)
    }
}

impl Message for Vec<u8> {
    fn byte_len(&self) -> u64 {
        self.as_slice().byte_len()
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.as_slice().read_exact_at(offset, buf)
    }
}

/// The first `len` bytes of an open file, read with positioned reads (the
/// file's cursor is left alone on Unix). A file just written is read back
/// from the page cache.
#[derive(Debug, Clone, Copy)]
pub struct FilePrefix<'a> {
    pub file: &'a File,
    pub len: u64,
}

impl Message for FilePrefix<'_> {
    fn byte_len(&self) -> u64 {
        self.len
    }

    #[cfg(unix)]
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(self.file, buf, offset)
    }

    #[cfg(not(unix))]
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        use std::io::{Read, Seek, SeekFrom};
        let mut file = self.file;
        file.seek(SeekFrom::Start(offset))?;
        file.read_exact(buf)
    }
}

/// A way to hash: scalar `md-5`, or a SIMD kernel this CPU has. A SIMD
/// backend can only be obtained after run-time detection found its CPU
/// features, which is what makes calling its kernel sound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backend(Kind);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Scalar,
    #[cfg(target_arch = "x86_64")]
    Avx2(x86::Avx2),
    #[cfg(target_arch = "x86_64")]
    Avx512(x86::Avx512),
}

impl Backend {
    /// One message at a time with `md-5` (its assembly block function).
    pub fn scalar() -> Self {
        Self(Kind::Scalar)
    }

    /// The widest backend this CPU runs.
    pub fn best() -> Self {
        Self::available().pop().unwrap_or_else(Self::scalar)
    }

    /// Every backend this CPU runs, narrowest first (scalar always).
    pub fn available() -> Vec<Self> {
        #[allow(unused_mut)]
        let mut all = vec![Self::scalar()];
        #[cfg(target_arch = "x86_64")]
        {
            all.extend(x86::Avx2::detect().map(|k| Self(Kind::Avx2(k))));
            all.extend(x86::Avx512::detect().map(|k| Self(Kind::Avx512(k))));
        }
        all
    }

    /// How many messages it hashes at once.
    pub fn lanes(self) -> usize {
        match self.0 {
            Kind::Scalar => 1,
            #[cfg(target_arch = "x86_64")]
            Kind::Avx2(_) => 8,
            #[cfg(target_arch = "x86_64")]
            Kind::Avx512(_) => 16,
        }
    }

    /// A short name for logs and benchmarks.
    pub fn name(self) -> &'static str {
        match self.0 {
            Kind::Scalar => "scalar (md-5)",
            #[cfg(target_arch = "x86_64")]
            Kind::Avx2(_) => "avx2, 8 lanes",
            #[cfg(target_arch = "x86_64")]
            Kind::Avx512(_) => "avx512f, 16 lanes",
        }
    }

    /// The MD5 of each message, in order. A message that cannot be read
    /// gets its read error; the others are hashed all the same.
    pub fn digest_all<M: Message>(self, messages: &[M]) -> Vec<io::Result<[u8; 16]>> {
        match self.0 {
            Kind::Scalar => messages.iter().map(digest_one).collect(),
            #[cfg(target_arch = "x86_64")]
            Kind::Avx2(kernel) => lanes::digest_all(|s, b| kernel.compress(s, b), messages),
            #[cfg(target_arch = "x86_64")]
            Kind::Avx512(kernel) => lanes::digest_all(|s, b| kernel.compress(s, b), messages),
        }
    }
}

/// The MD5 of each message with the best backend for their number: lanes
/// for two or more, `md-5` for one (a lone lane is no faster than it).
pub fn digest_all<M: Message>(messages: &[M]) -> Vec<io::Result<[u8; 16]>> {
    let backend = if messages.len() < 2 {
        Backend::scalar()
    } else {
        Backend::best()
    };
    backend.digest_all(messages)
}

fn digest_one<M: Message + ?Sized>(message: &M) -> io::Result<[u8; 16]> {
    let mut hasher = Md5::new();
    let mut buf = vec![0; STRIP.min(usize::try_from(message.byte_len()).unwrap_or(STRIP))];
    let mut offset = 0;
    let len = message.byte_len();
    while offset < len {
        let take = usize::try_from(len - offset).map_or(buf.len(), |r| r.min(buf.len()));
        message.read_exact_at(offset, &mut buf[..take])?;
        hasher.update(&buf[..take]);
        offset += take as u64;
    }
    Ok(hasher.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn expected(message: &[u8]) -> [u8; 16] {
        Md5::digest(message).into()
    }

    fn check(messages: &[Vec<u8>], what: &str) {
        let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        let backends = Backend::available();
        for backend in &backends {
            let digests = backend.digest_all(&refs);
            assert_eq!(digests.len(), messages.len());
            for (k, (digest, message)) in digests.iter().zip(messages).enumerate() {
                let digest = digest.as_ref().map_err(ToString::to_string);
                assert_eq!(
                    digest,
                    Ok(&expected(message)),
                    "{}: {what}, message {k} of {} bytes",
                    backend.name(),
                    message.len()
                );
            }
        }
    }

    fn random_bytes(rng: &mut impl Rng, len: usize) -> Vec<u8> {
        let mut bytes = vec![0; len];
        rng.fill(bytes.as_mut_slice());
        bytes
    }

    #[test]
    fn every_backend_the_cpu_has_is_tried() {
        let names: Vec<&str> = Backend::available().iter().map(|b| b.name()).collect();
        eprintln!("backends: {names:?}");
        #[cfg(target_arch = "x86_64")]
        {
            assert_eq!(
                names.contains(&"avx2, 8 lanes"),
                std::arch::is_x86_feature_detected!("avx2")
            );
            assert_eq!(
                names.contains(&"avx512f, 16 lanes"),
                std::arch::is_x86_feature_detected!("avx512f")
            );
        }
        assert_eq!(Backend::best(), *Backend::available().last().unwrap());
    }

    #[test]
    fn padding_edges_alone_and_together() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let edges = [
            0,
            1,
            55,
            56,
            57,
            63,
            64,
            65,
            119,
            120,
            127,
            128,
            129,
            4095,
            4096,
            4097,
            32_767,
            32_768,
            32_769,
            32_768 + 55,
            32_768 + 56,
            65_536,
        ];
        let all: Vec<Vec<u8>> = edges.iter().map(|&n| random_bytes(&mut rng, n)).collect();
        for message in &all {
            check(std::slice::from_ref(message), "alone");
        }
        // More messages than lanes, all of unequal length.
        check(&all, "together");
        // Equal lengths in every lane.
        for &n in &edges {
            let same: Vec<Vec<u8>> = (0..17).map(|_| random_bytes(&mut rng, n)).collect();
            check(&same, &format!("17 messages of {n} bytes"));
        }
    }

    #[test]
    fn fewer_messages_than_lanes() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(12);
        for count in 0..=17 {
            let messages: Vec<Vec<u8>> = (0..count)
                .map(|_| {
                    let len = rng.random_range(0..5000);
                    random_bytes(&mut rng, len)
                })
                .collect();
            check(&messages, &format!("{count} messages"));
        }
    }

    #[test]
    fn random_lengths_up_to_a_megabyte() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(13);
        for round in 0..4 {
            let count = rng.random_range(1..40);
            let messages: Vec<Vec<u8>> = (0..count)
                .map(|_| {
                    // Mostly short, some long: lanes finish at very
                    // different times and take the next message.
                    let len = if rng.random_bool(0.3) {
                        rng.random_range(0..=1 << 20)
                    } else {
                        rng.random_range(0..200_000)
                    };
                    random_bytes(&mut rng, len)
                })
                .collect();
            check(&messages, &format!("round {round}"));
        }
    }

    /// A message whose read fails part-way.
    struct Broken(u64);

    impl Message for Broken {
        fn byte_len(&self) -> u64 {
            self.0
        }

        fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
            if offset > 0 {
                return Err(io::Error::other("gone"));
            }
            buf.fill(0);
            Ok(())
        }
    }

    struct Fine(Vec<u8>);

    impl Message for Fine {
        fn byte_len(&self) -> u64 {
            self.0.byte_len()
        }

        fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
            self.0.read_exact_at(offset, buf)
        }
    }

    #[test]
    fn a_read_error_is_that_message_s_alone() {
        let good = Fine(vec![5; 100_000]);
        let broken = Broken(100_000);
        let messages: Vec<&dyn Message> = vec![&good, &broken, &good, &broken, &good];
        for backend in Backend::available() {
            let digests = backend.digest_all(&messages);
            for (k, digest) in digests.iter().enumerate() {
                if k % 2 == 1 {
                    assert!(digest.is_err(), "{}: message {k}", backend.name());
                } else {
                    assert_eq!(digest.as_ref().ok(), Some(&expected(&good.0)));
                }
            }
        }
    }

    #[test]
    fn file_prefixes_are_read_back() {
        use std::io::Write;
        let mut rng = rand::rngs::StdRng::seed_from_u64(14);
        let contents: Vec<Vec<u8>> = (0..20)
            .map(|k| random_bytes(&mut rng, 1000 * k + 7))
            .collect();
        let files: Vec<File> = contents
            .iter()
            .map(|c| {
                let mut file = tempfile::tempfile().unwrap();
                file.write_all(c).unwrap();
                // More bytes after the prefix, which must not be hashed.
                file.write_all(b"trailer").unwrap();
                file
            })
            .collect();
        let prefixes: Vec<FilePrefix> = files
            .iter()
            .zip(&contents)
            .map(|(file, c)| FilePrefix {
                file,
                len: c.len() as u64,
            })
            .collect();
        for backend in Backend::available() {
            let digests = backend.digest_all(&prefixes);
            for (digest, c) in digests.iter().zip(&contents) {
                assert_eq!(
                    digest.as_ref().ok(),
                    Some(&expected(c)),
                    "{}",
                    backend.name()
                );
            }
        }
    }

    /// `cargo test --release -p xnatkit-md5 -- --ignored --nocapture`:
    /// throughput of each backend on 441 MB in 512 KiB messages (the
    /// export benchmark's ct shape), hashed 16 at a time from memory.
    #[test]
    #[ignore = "a measurement, not a check"]
    fn throughput() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(15);
        let messages: Vec<Vec<u8>> = (0..16).map(|_| random_bytes(&mut rng, 512 << 10)).collect();
        let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        let rounds = 840 / 16;
        let total = (rounds * 16 * (512 << 10)) as f64;
        for backend in Backend::available() {
            let start = std::time::Instant::now();
            for _ in 0..rounds {
                let digests = backend.digest_all(&refs);
                assert!(digests.iter().all(Result::is_ok));
            }
            let secs = start.elapsed().as_secs_f64();
            eprintln!(
                "{:>18}: {:.0} MB in {:.3} s = {:.0} MB/s",
                backend.name(),
                total / 1e6,
                secs,
                total / 1e6 / secs
            );
        }
    }
}
