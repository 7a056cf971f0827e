//! Fetches every file of one resource as a single streamed zip
//! (`…/resources/R/files?format=zip`) instead of one request per file, and
//! holds each entry to the same rules as a single download: it is written
//! to `NAME.part` and gets its final name only when its MD5 matches the
//! file listing's.
//!
//! Most MD5s are not computed while the bytes stream in: entries written
//! whole wait in a small batch (up to [`BATCH_FILES`] files or
//! [`BATCH_BYTES`]), which is then read back from the page cache and hashed
//! all at once, one file per SIMD lane (`xnatkit_md5`: 16 lanes with
//! AVX-512, 8 with AVX2). One MD5 stream runs at about 600 MB/s on this
//! kind of machine and sixteen in lanes at several GB/s; hashing was half
//! of an export's CPU time. Each file of the batch is then renamed or
//! refused on its own digest, as if it had been hashed on the way, and
//! whatever stops the zip, the entries already received whole are
//! verified first. Entries over [`HASH_ON_THE_WAY`] are still hashed as
//! they arrive (lanes would idle, and reading a large file back would come
//! after its download instead of alongside it). A verified file's writeback
//! is started at once, so the run's closing `syncfs` has little left to do.
//!
//! Nothing in the zip decides where bytes go: an entry is matched by name
//! against the listing and written to that listed file's destination, so a
//! `../` entry, an entry not in the listing, an entry seen twice or one with
//! a wrong digest refuses the rest of the resource (its `.part` is deleted).
//! Entries are parsed as they arrive (STORED only, the server's default), so
//! memory stays flat whatever the resource size. When the zip path cannot
//! finish — the connection breaks, the server answers with an error, an
//! entry is compressed or missing — the files not yet verified are handed
//! back to be fetched one by one, which resumes a half-written `.part`.
//!
//! The local headers are parsed here rather than with the `zip` crate: its
//! streaming reader (`read_zipfile_from_stream`) wants a blocking `Read`
//! over the whole body, while this push parser takes the HTTP body's chunks
//! as they come and writes each byte once. Only what a STORED stream needs
//! is read: local headers, ZIP64 sizes, data descriptors.
//!
//! The parser (with the writes and the MD5s, the CPU-heavy part) runs on a
//! blocking thread of its own per resource, fed the body's chunks through
//! a small bounded channel. On the async task, the resources of an export
//! would all be driven by the one task that awaits them, so hashing used
//! one core however many downloads were in flight.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::StreamExt;
use md5::{Digest, Md5};
use tokio_util::sync::CancellationToken;
use xnatkit_md5::FilePrefix;

use crate::client::{Request, XnatClient, describe_reqwest};
use crate::download::{ByteSink, FileOutcome, Manifest, part_path};
use crate::error::{ClientError, is_disk_full};
use crate::transfer::FileJob;

const LOCAL_HEADER: u32 = 0x0403_4b50;
const CENTRAL_HEADER: u32 = 0x0201_4b50;
const END_OF_CENTRAL: u32 = 0x0605_4b50;
const DESCRIPTOR: u32 = 0x0807_4b50;
const LOCAL_HEADER_LEN: usize = 30;
const FLAG_DESCRIPTOR: u16 = 0x0008;
const METHOD_STORED: u16 = 0;
const ZIP64_EXTRA: u16 = 0x0001;
/// Body chunks queued for a resource's parser thread: enough to keep it
/// busy while the next ones arrive, small enough to keep memory flat.
const CHUNKS_IN_FLIGHT: usize = 16;
/// Entries written whole and hashed together: as many as the widest MD5
/// kernel has lanes.
const BATCH_FILES: usize = 16;
/// …or fewer when they are large, so the batch is still in the page cache
/// when it is read back.
const BATCH_BYTES: u64 = 64 << 20;
/// Entries larger than this are hashed on the way instead, with `md-5`:
/// such files are few per resource, lanes would mostly idle, and hashing
/// while the bytes arrive overlaps it with the download rather than
/// reading a large file back after it.
const HASH_ON_THE_WAY: u64 = 8 << 20;

/// What the download task hands the parser thread.
enum Feed {
    Chunk(bytes::Bytes),
    /// The body is over: `None` when it simply ended, else why it stopped.
    End(Option<Stop>),
}

/// What became of one file of the resource.
#[derive(Debug)]
pub(crate) enum ZipOutcome {
    /// Verified and renamed (`Ok`), or refused (`Err`).
    Done(Result<FileOutcome, ClientError>),
    /// Not fetched through the zip; fetch it on its own.
    FetchAlone,
}

/// The URL of the resource holding `uri` (`…/resources/R`), when `uri` is a
/// resource file URI.
pub(crate) fn resource_of(uri: &str) -> Option<&str> {
    let files = uri.find("/files/")?;
    let resource = &uri[..files];
    resource.contains("/resources/").then_some(resource)
}

/// Fetches `jobs` (every file of the resource `resource_uri`) through one
/// zip. `finished` is called for each file as soon as its outcome is known;
/// the returned outcomes are in `jobs` order.
pub(crate) async fn fetch_resource_zip(
    client: &XnatClient,
    resource_uri: &str,
    jobs: &[&FileJob],
    manifest: Option<&Manifest>,
    progress: &dyn ByteSink,
    cancel: &CancellationToken,
    finished: &(dyn Fn(usize, &Result<FileOutcome, ClientError>) + Sync),
) -> Vec<ZipOutcome> {
    let request = Request::get(
        format!("{resource_uri}/files"),
        format!("files of {resource_uri} as a zip"),
    )
    .query("format", "zip");
    let written = Arc::new(AtomicU64::new(0));
    let before_body = |outcomes: Vec<ZipOutcome>| report(outcomes, &[], manifest, finished);
    let response = match client.send_raw(&request).await {
        Ok(r) if r.status().is_success() => r,
        Ok(r) if refusal_applies_to_every_file(r.status()) => {
            // "Come back later" or "not allowed" holds for each file too:
            // asking file by file would only hammer the server.
            let err = match client.check(&request, r).await {
                Err(err) => err,
                Ok(_) => ClientError::Invalid("unexpected success".into()),
            };
            let reader = EntryReader::new(resource_uri, jobs, Arc::clone(&written));
            return before_body(reader.fail_all(&err));
        }
        Ok(r) => {
            tracing::debug!(status = %r.status(), resource = resource_uri, "no zip; fetching files one by one");
            return before_body(fetch_all_alone(jobs.len()));
        }
        Err(err) => {
            tracing::debug!(error = %err, resource = resource_uri, "no zip; fetching files one by one");
            return before_body(fetch_all_alone(jobs.len()));
        }
    };
    let url = response.url().to_string();
    let (feed, mut fed) = tokio::sync::mpsc::channel::<Feed>(CHUNKS_IN_FLIGHT);
    let parser = {
        let owned: Vec<FileJob> = jobs.iter().map(|j| (*j).clone()).collect();
        let resource = resource_uri.to_owned();
        let written = Arc::clone(&written);
        let url = url.clone();
        tokio::task::spawn_blocking(move || {
            let refs: Vec<&FileJob> = owned.iter().collect();
            let mut reader = EntryReader::new(&resource, &refs, written);
            let stopped = loop {
                match fed.blocking_recv() {
                    Some(Feed::Chunk(chunk)) => match reader.feed(&chunk) {
                        Ok(false) => {}
                        Ok(true) => break None,
                        Err(stop) => break Some(stop),
                    },
                    Some(Feed::End(stop)) => break stop,
                    // The download was dropped half-way.
                    None => break Some(Stop::Cancelled),
                }
            };
            // Closed here, so the download stops sending at once.
            drop(fed);
            reader.close(stopped, &url)
        })
    };
    let mut stream = response.bytes_stream();
    let mut reported = 0;
    let mut forward_progress = || {
        let now = written.load(Ordering::Relaxed);
        progress.add(now.saturating_sub(reported));
        reported = now;
    };
    let end = loop {
        if cancel.is_cancelled() {
            break Some(Stop::Cancelled);
        }
        let Some(chunk) = stream.next().await else {
            break None;
        };
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(error = %describe_reqwest(&e), url = %url, "zip stream broke; fetching the rest one by one");
                break Some(Stop::FetchRestAlone);
            }
        };
        if feed.send(Feed::Chunk(chunk)).await.is_err() {
            // The parser has stopped; its own reason stands.
            break None;
        }
        forward_progress();
    };
    // Refused only when the parser has stopped already: nothing to tell it.
    let _ = feed.send(Feed::End(end)).await;
    drop(feed);
    let (outcomes, verified) = match parser.await {
        Ok(done) => done,
        Err(err) => {
            tracing::warn!(error = %err, resource = resource_uri, "the zip parser stopped; fetching files one by one");
            (fetch_all_alone(jobs.len()), Vec::new())
        }
    };
    forward_progress();
    report(outcomes, &verified, manifest, finished)
}

/// Every file left to a single download.
fn fetch_all_alone(count: usize) -> Vec<ZipOutcome> {
    (0..count).map(|_| ZipOutcome::FetchAlone).collect()
}

/// Records the verified files in the manifest and tells `finished` about
/// every file the zip settled.
fn report(
    outcomes: Vec<ZipOutcome>,
    verified: &[(PathBuf, String)],
    manifest: Option<&Manifest>,
    finished: &(dyn Fn(usize, &Result<FileOutcome, ClientError>) + Sync),
) -> Vec<ZipOutcome> {
    if let Some(m) = manifest {
        for (dest, md5) in verified {
            m.record_later(dest, md5);
        }
    }
    for (k, outcome) in outcomes.iter().enumerate() {
        if let ZipOutcome::Done(result) = outcome {
            finished(k, result);
        }
    }
    outcomes
}

fn refusal_applies_to_every_file(status: reqwest::StatusCode) -> bool {
    use reqwest::StatusCode;
    matches!(
        status,
        StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::TOO_MANY_REQUESTS
            | StatusCode::UNAUTHORIZED
            | StatusCode::FORBIDDEN
    )
}

/// Why the zip path stopped before its end.
enum Stop {
    /// Breaks and compressed entries: the other files are fetched alone.
    FetchRestAlone,
    Cancelled,
    /// A write failed (full disk…): it is the current file's error, and
    /// the rest is not attempted.
    Local(ClientError),
    /// The zip broke a rule: every unverified file fails with this.
    Refused(String),
}

impl Stop {
    fn into_error(self, url: &str) -> Option<ClientError> {
        match self {
            Self::FetchRestAlone => None,
            Self::Cancelled => Some(ClientError::Cancelled),
            Self::Local(err) => Some(err),
            Self::Refused(reason) => Some(ClientError::Decode {
                url: url.to_owned(),
                reason: format!("{reason}; refused the zip (no file of it kept unless verified)"),
            }),
        }
    }
}

enum State {
    Header,
    Data {
        job: usize,
        size: u64,
        remaining: u64,
        file: std::fs::File,
        part: PathBuf,
        /// Only for an entry hashed on the way ([`HASH_ON_THE_WAY`]).
        hasher: Option<Md5>,
        descriptor_zip64: Option<bool>,
    },
    /// The data descriptor after an entry's bytes; `true` for 8-byte sizes.
    Descriptor(bool),
    Finished,
}

/// An entry written whole to its `.part`, not yet verified.
struct Written {
    job: usize,
    size: u64,
    file: std::fs::File,
    part: PathBuf,
}

/// A push parser of a zip stream that writes each entry straight into its
/// listed file.
struct EntryReader<'a> {
    resource: &'a str,
    jobs: &'a [&'a FileJob],
    by_path: HashMap<&'a str, usize>,
    outcomes: Vec<Option<Result<FileOutcome, ClientError>>>,
    /// Files verified and renamed, with their MD5, for the manifest.
    verified: Vec<(PathBuf, String)>,
    /// Entries written whole, waiting to be hashed together.
    batch: Vec<Written>,
    batch_bytes: u64,
    /// Entry bytes written so far (read by the download task for progress).
    written: Arc<AtomicU64>,
    pending: Vec<u8>,
    state: State,
}

impl<'a> EntryReader<'a> {
    fn new(resource: &'a str, jobs: &'a [&'a FileJob], written: Arc<AtomicU64>) -> Self {
        let by_path = jobs
            .iter()
            .enumerate()
            .map(|(i, j)| (j.remote.path.as_str(), i))
            .collect();
        Self {
            resource,
            jobs,
            by_path,
            outcomes: jobs.iter().map(|_| None).collect(),
            verified: Vec::new(),
            batch: Vec::new(),
            batch_bytes: 0,
            written,
            pending: Vec::new(),
            state: State::Header,
        }
    }

    fn state_is_finished(&self) -> bool {
        matches!(self.state, State::Finished)
    }

    /// Consumes one chunk; `Ok(true)` once the entries are over.
    fn feed(&mut self, chunk: &[u8]) -> Result<bool, Stop> {
        if self.pending.is_empty() {
            // The common case: entry bytes go from the chunk to the file
            // without a copy into `pending`.
            let (used, result) = self.consume(chunk);
            if result.is_ok() {
                self.pending.extend_from_slice(&chunk[used..]);
            }
            return result;
        }
        let mut pending = std::mem::take(&mut self.pending);
        pending.extend_from_slice(chunk);
        let (used, result) = self.consume(&pending);
        pending.drain(..used);
        self.pending = pending;
        result
    }

    /// Steps through `input` as far as it goes; returns the bytes used.
    fn consume(&mut self, input: &[u8]) -> (usize, Result<bool, Stop>) {
        let mut used = 0;
        loop {
            match self.step(&input[used..]) {
                Ok(Some(n)) if n > 0 => used += n,
                Ok(_) => return (used, Ok(self.state_is_finished())),
                Err(stop) => return (used, Err(stop)),
            }
            if self.state_is_finished() {
                return (used, Ok(true));
            }
        }
    }

    /// Parses what it can of `input`; `Some(n)` bytes consumed, `None` when
    /// more input is needed.
    fn step(&mut self, input: &[u8]) -> Result<Option<usize>, Stop> {
        match &mut self.state {
            State::Finished => Ok(None),
            State::Header => self.header(input),
            State::Descriptor(zip64) => {
                if input.len() < 4 {
                    return Ok(None);
                }
                let signed = u32_at(input, 0) == DESCRIPTOR;
                let len = usize::from(signed) * 4 + 4 + if *zip64 { 16 } else { 8 };
                if input.len() < len {
                    return Ok(None);
                }
                self.state = State::Header;
                Ok(Some(len))
            }
            State::Data {
                job,
                size,
                remaining,
                file,
                part,
                hasher,
                descriptor_zip64,
            } => {
                if input.is_empty() {
                    return Ok(None);
                }
                let take = usize::try_from(*remaining).map_or(input.len(), |r| r.min(input.len()));
                let bytes = &input[..take];
                if let Err(e) = file.write_all(bytes) {
                    let err = if is_disk_full(&e) {
                        ClientError::DiskFull { path: part.clone() }
                    } else {
                        ClientError::io(&*part, e)
                    };
                    return Err(Stop::Local(err));
                }
                if let Some(hasher) = hasher {
                    hasher.update(bytes);
                }
                self.written.fetch_add(take as u64, Ordering::Relaxed);
                *remaining -= take as u64;
                if *remaining == 0 {
                    let (job, size) = (*job, *size);
                    let next = match descriptor_zip64 {
                        Some(zip64) => State::Descriptor(*zip64),
                        None => State::Header,
                    };
                    let State::Data {
                        file, part, hasher, ..
                    } = std::mem::replace(&mut self.state, next)
                    else {
                        return Ok(Some(take));
                    };
                    self.finish_entry(job, size, file, part, hasher)?;
                }
                Ok(Some(take))
            }
        }
    }

    fn header(&mut self, input: &[u8]) -> Result<Option<usize>, Stop> {
        if input.len() < 4 {
            return Ok(None);
        }
        match u32_at(input, 0) {
            LOCAL_HEADER => {}
            CENTRAL_HEADER | END_OF_CENTRAL => {
                self.state = State::Finished;
                return Ok(Some(4));
            }
            _ => return Err(Stop::Refused("the zip has a damaged entry header".into())),
        }
        if input.len() < LOCAL_HEADER_LEN {
            return Ok(None);
        }
        let flags = u16_at(input, 6);
        let method = u16_at(input, 8);
        let header_size = u64::from(u32_at(input, 22));
        let name_len = usize::from(u16_at(input, 26));
        let extra_len = usize::from(u16_at(input, 28));
        let total = LOCAL_HEADER_LEN + name_len + extra_len;
        if input.len() < total {
            return Ok(None);
        }
        let name_bytes = &input[LOCAL_HEADER_LEN..LOCAL_HEADER_LEN + name_len];
        let extra = &input[LOCAL_HEADER_LEN + name_len..total];
        let Ok(name) = std::str::from_utf8(name_bytes) else {
            return Err(Stop::Refused(
                "the zip has an entry whose name is not UTF-8".into(),
            ));
        };
        if name.ends_with('/') && header_size == 0 && flags & FLAG_DESCRIPTOR == 0 {
            return Ok(Some(total)); // a folder entry
        }
        let job = self.match_entry(name)?;
        if method != METHOD_STORED {
            // Compressed entries are left to single downloads rather than
            // inflated here; the server sends STORED unless asked otherwise.
            return Err(Stop::FetchRestAlone);
        }
        let expected = self.jobs[job].remote.size;
        let zip64 = has_zip64_extra(extra);
        let (size, descriptor_zip64) = if flags & FLAG_DESCRIPTOR != 0 {
            // The size follows the data; STORED bytes end where the listing
            // says the file ends (the MD5 catches a lie).
            let Some(size) = expected else {
                return Err(Stop::FetchRestAlone);
            };
            (size, Some(zip64))
        } else if header_size == u64::from(u32::MAX) {
            match zip64_size(extra) {
                Some(size) => (size, None),
                None => return Err(Stop::Refused(format!("zip entry {name:?} has no size"))),
            }
        } else {
            (header_size, None)
        };
        if expected.is_some_and(|e| e != size) {
            return Err(Stop::Refused(format!(
                "zip entry {name:?} has {size} bytes but the file listing says {}",
                expected.unwrap_or_default()
            )));
        }
        let dest = &self.jobs[job].dest;
        let part = part_path(dest);
        // Readable too: it is read back to be hashed.
        let opened = dest
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| {
                std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(&part)
            });
        let file = match opened {
            Ok(f) => f,
            Err(e) => {
                let err = if is_disk_full(&e) {
                    ClientError::DiskFull { path: part }
                } else {
                    ClientError::io(&part, e)
                };
                return Err(self.fail_local(job, err));
            }
        };
        self.state = State::Data {
            job,
            size,
            remaining: size,
            file,
            part: part.clone(),
            hasher: (size > HASH_ON_THE_WAY).then(Md5::new),
            descriptor_zip64,
        };
        if size == 0 {
            let State::Data { file, part, .. } = std::mem::replace(
                &mut self.state,
                descriptor_zip64.map_or(State::Header, State::Descriptor),
            ) else {
                return Ok(Some(total));
            };
            self.finish_entry(job, size, file, part, None)?;
        }
        Ok(Some(total))
    }

    /// The listed file an entry name stands for. The server names entries
    /// `SESSION/scans/SCAN/resources/R/files/PATH`; the part after any
    /// `/files/` (or the whole name) must be a listed path.
    fn match_entry(&self, name: &str) -> Result<usize, Stop> {
        if xnatkit_fileio::safe_relative_path(name).is_err() {
            return Err(Stop::Refused(format!(
                "the zip has an entry with an unsafe name {name:?}"
            )));
        }
        let mut candidates = std::iter::once(name).chain(
            name.match_indices("/files/")
                .map(|(i, m)| &name[i + m.len()..]),
        );
        let job = candidates
            .find_map(|c| self.by_path.get(c).copied())
            .ok_or_else(|| {
                Stop::Refused(format!(
                    "the zip has an entry {name:?} that is not in the file listing of {}",
                    self.resource
                ))
            })?;
        if self.outcomes[job].is_some() {
            return Err(Stop::Refused(format!("the zip has entry {name:?} twice")));
        }
        Ok(job)
    }

    /// An entry is written whole: it is settled now when it was hashed on
    /// the way, else it joins the batch, which is hashed once full.
    fn finish_entry(
        &mut self,
        job: usize,
        size: u64,
        file: std::fs::File,
        part: PathBuf,
        hasher: Option<Md5>,
    ) -> Result<(), Stop> {
        let written = Written {
            job,
            size,
            file,
            part,
        };
        if let Some(hasher) = hasher {
            return self.settle_written(written, Ok(hasher.finalize().into()));
        }
        self.batch.push(written);
        self.batch_bytes += size;
        if self.batch.len() >= BATCH_FILES || self.batch_bytes >= BATCH_BYTES {
            self.verify_batch()?;
        }
        Ok(())
    }

    /// Hashes the batch's files together, reading them back, and settles
    /// each on its own digest ([`Self::settle_written`]); the first
    /// failure is returned once the whole batch is settled.
    fn verify_batch(&mut self) -> Result<(), Stop> {
        let batch = std::mem::take(&mut self.batch);
        self.batch_bytes = 0;
        if batch.is_empty() {
            return Ok(());
        }
        let messages: Vec<FilePrefix> = batch
            .iter()
            .map(|w| FilePrefix {
                file: &w.file,
                len: w.size,
            })
            .collect();
        let digests = xnatkit_md5::digest_all(&messages);
        drop(messages);
        let mut stop = None;
        for (written, digest) in batch.into_iter().zip(digests) {
            if let Err(failed) = self.settle_written(written, digest) {
                stop.get_or_insert(failed);
            }
        }
        stop.map_or(Ok(()), Err)
    }

    /// A file written whole with its MD5: renamed to its final name when
    /// the digest matches the listing's; otherwise its `.part` is deleted
    /// and the zip refused. A file that could not be read back or renamed
    /// is that file's error, and the rest of the zip is not attempted.
    fn settle_written(
        &mut self,
        written: Written,
        digest: std::io::Result<[u8; 16]>,
    ) -> Result<(), Stop> {
        let Written {
            job, file, part, ..
        } = written;
        let target = self.jobs[job];
        let actual = match digest {
            Ok(d) => hex::encode(d),
            Err(e) => {
                drop(file);
                return Err(self.fail_local(job, ClientError::io(&part, e)));
            }
        };
        if let Some(expected) = &target.remote.digest
            && expected != &actual
        {
            drop(file);
            let _ = std::fs::remove_file(&part);
            return Err(Stop::Refused(format!(
                "the zip entry for {:?} has MD5 {actual}, not the listing's {expected}",
                target.remote.path
            )));
        }
        start_writeback(&file);
        drop(file);
        if let Err(e) = std::fs::rename(&part, &target.dest) {
            return Err(self.fail_local(job, ClientError::io(&target.dest, e)));
        }
        self.verified.push((target.dest.clone(), actual));
        self.settle(job, Ok(FileOutcome::Downloaded));
        Ok(())
    }

    /// Ends the zip: verifies the entries received whole whatever stopped
    /// it, then settles every file (see [`Self::into_outcomes`]). Returns
    /// the outcomes and the verified files with their MD5.
    fn close(
        mut self,
        stopped: Option<Stop>,
        url: &str,
    ) -> (Vec<ZipOutcome>, Vec<(PathBuf, String)>) {
        let stopped = match stopped {
            Some(stop) => Some(stop),
            // The body ended: a complete zip ends in its central directory.
            None if self.state_is_finished() => None,
            None => Some(Stop::FetchRestAlone),
        };
        let stopped = match (stopped, self.verify_batch()) {
            // A bad digest or a local failure in the batch outranks a
            // break, which would only hand the rest to single downloads.
            (None | Some(Stop::FetchRestAlone), Err(batch)) => Some(batch),
            (stopped, _) => stopped,
        };
        self.abandon_current();
        let verified = std::mem::take(&mut self.verified);
        let outcomes = self.into_outcomes(stopped.and_then(|s| s.into_error(url)));
        (outcomes, verified)
    }

    /// A local failure of a file that is not the one in [`State::Data`]:
    /// it is that file's error, and the rest is not attempted.
    fn fail_local(&mut self, job: usize, err: ClientError) -> Stop {
        self.settle(job, Err(err));
        Stop::Cancelled
    }

    fn settle(&mut self, job: usize, result: Result<FileOutcome, ClientError>) {
        self.outcomes[job] = Some(result);
    }

    /// A `.part` cut off mid-entry stays for a single download to resume,
    /// unless the zip was refused (then [`Self::into_outcomes`] removes it).
    fn abandon_current(&mut self) {
        if let State::Data { file, .. } = &mut self.state {
            let _ = file.flush();
        }
    }

    /// Every file fails with (a copy of) `err`, which concerns the whole
    /// resource.
    fn fail_all(mut self, err: &ClientError) -> Vec<ZipOutcome> {
        let message = err.to_string();
        for job in 0..self.jobs.len() {
            let own = match err {
                ClientError::Forbidden {
                    what,
                    server,
                    message,
                } => ClientError::Forbidden {
                    what: what.clone(),
                    server: server.clone(),
                    message: message.clone(),
                },
                ClientError::LoginFailed { server, user } => ClientError::LoginFailed {
                    server: server.clone(),
                    user: user.clone(),
                },
                _ => ClientError::Invalid(message.clone()),
            };
            self.settle(job, Err(own));
        }
        self.into_outcomes(None)
    }

    /// Final outcomes. Without `error` the unsettled files are fetched
    /// alone. A refusal fails every unsettled file and deletes the `.part`
    /// being written; a local error is the current file's and cancels the
    /// rest; a cancellation cancels them all (a `.part` stays to resume).
    fn into_outcomes(mut self, error: Option<ClientError>) -> Vec<ZipOutcome> {
        let current = match std::mem::replace(&mut self.state, State::Finished) {
            State::Data { job, part, .. } => Some((job, part)),
            _ => None,
        };
        if let Some(err) = error {
            let refusal = match &err {
                ClientError::Decode { url, reason } => Some((url.clone(), reason.clone())),
                _ => None,
            };
            if refusal.is_some()
                && let Some((_, part)) = &current
            {
                let _ = std::fs::remove_file(part);
            }
            let mut err = Some(err);
            if refusal.is_none()
                && let Some((job, _)) = &current
                && self.outcomes[*job].is_none()
                && let Some(own) = err.take()
            {
                self.settle(*job, Err(own));
            }
            for job in 0..self.jobs.len() {
                if self.outcomes[job].is_none() {
                    let rest = match &refusal {
                        Some((url, reason)) => ClientError::Decode {
                            url: url.clone(),
                            reason: reason.clone(),
                        },
                        None => ClientError::Cancelled,
                    };
                    self.settle(job, Err(rest));
                }
            }
        }
        self.outcomes
            .into_iter()
            .map(|o| o.map_or(ZipOutcome::FetchAlone, ZipOutcome::Done))
            .collect()
    }
}

/// Asks the kernel to start writing a verified file to disk now, without
/// waiting for it: on Linux `POSIX_FADV_DONTNEED` writes the dirty pages
/// back (asynchronously) and drops the pages already clean. The run's one
/// `syncfs` ([`Manifest::commit`]) then finds almost nothing left to write,
/// where it used to write the whole export while nothing else ran (0.2 s
/// of a 1 s export of 441 MB here). Durability still comes from that
/// `syncfs`; this only moves the writing earlier, alongside the download.
#[cfg(target_os = "linux")]
fn start_writeback(file: &std::fs::File) {
    let _ = rustix::fs::fadvise(file, 0, None, rustix::fs::Advice::DontNeed);
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &std::fs::File) {}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn extra_fields(extra: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    let mut at = 0;
    std::iter::from_fn(move || {
        if at + 4 > extra.len() {
            return None;
        }
        let tag = u16_at(extra, at);
        let len = usize::from(u16_at(extra, at + 2));
        let body = extra.get(at + 4..at + 4 + len)?;
        at += 4 + len;
        Some((tag, body))
    })
}

fn has_zip64_extra(extra: &[u8]) -> bool {
    extra_fields(extra).any(|(tag, _)| tag == ZIP64_EXTRA)
}

fn zip64_size(extra: &[u8]) -> Option<u64> {
    let (_, body) = extra_fields(extra).find(|(tag, _)| *tag == ZIP64_EXTRA)?;
    Some(u64::from_le_bytes(body.get(..8)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::RemoteFile;
    use std::path::Path;

    fn job(dir: &Path, path: &str, data: &[u8]) -> FileJob {
        FileJob {
            group: 0,
            remote: RemoteFile {
                path: path.to_owned(),
                uri: format!("/data/experiments/E/scans/1/resources/DICOM/files/{path}"),
                resource: "DICOM".into(),
                size: Some(data.len() as u64),
                digest: Some(hex::encode(Md5::digest(data))),
            },
            dest: dir.join(path),
        }
    }

    /// A zip as a streaming server writes it: sizes in data descriptors,
    /// the second entry with ZIP64 (8-byte) descriptor sizes.
    fn streamed_zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut zip = zip::ZipWriter::new_stream(Vec::new());
        for (i, (name, data)) in entries.iter().enumerate() {
            let options = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Stored)
                .large_file(i == 1);
            zip.start_file(*name, options).unwrap();
            zip.write_all(data).unwrap();
        }
        zip.finish().unwrap().into_inner()
    }

    /// Feeds `bytes` in pieces of `chunk` as the parser thread does; returns
    /// how the feeding ended (`Ok(true)`: the zip is over) and the outcomes.
    fn run(
        jobs: &[&FileJob],
        bytes: &[u8],
        chunk: usize,
    ) -> (Result<bool, String>, Vec<ZipOutcome>) {
        let mut reader = EntryReader::new("R", jobs, Arc::new(AtomicU64::new(0)));
        let mut result = Ok(false);
        for piece in bytes.chunks(chunk) {
            result = reader.feed(piece);
            if !matches!(result, Ok(false)) {
                break;
            }
        }
        let (result, stopped) = match result {
            Ok(done) => (Ok(done), None),
            Err(stop) => (Err(stop_name(&stop)), Some(stop)),
        };
        let (outcomes, _) = reader.close(stopped, "R");
        (result, outcomes)
    }

    fn stop_name(stop: &Stop) -> String {
        match stop {
            Stop::FetchRestAlone => "fetch rest alone".into(),
            Stop::Cancelled => "cancelled".into(),
            Stop::Local(err) => format!("local: {err}"),
            Stop::Refused(reason) => format!("refused: {reason}"),
        }
    }

    #[test]
    fn streamed_entries_split_anywhere_land_verified() {
        let dir = tempfile::tempdir().unwrap();
        let files: [(&str, Vec<u8>); 3] = [
            ("a.dcm", vec![1; 5000]),
            ("sub/b.dcm", vec![2; 70_000]),
            ("c.dcm", Vec::new()),
        ];
        let jobs: Vec<FileJob> = files.iter().map(|(n, d)| job(dir.path(), n, d)).collect();
        let refs: Vec<&FileJob> = jobs.iter().collect();
        let named: Vec<(String, &[u8])> = files
            .iter()
            .map(|(n, d)| {
                (
                    format!("S1/scans/1-T/resources/DICOM/files/{n}"),
                    d.as_slice(),
                )
            })
            .collect();
        let entries: Vec<(&str, &[u8])> = named.iter().map(|(n, d)| (n.as_str(), *d)).collect();
        let zip = streamed_zip(&entries);
        for chunk in [1, 7, 4096, zip.len()] {
            let (result, outcomes) = run(&refs, &zip, chunk);
            assert!(matches!(result, Ok(true)), "chunk {chunk}");
            assert!(
                outcomes
                    .iter()
                    .all(|o| matches!(o, ZipOutcome::Done(Ok(FileOutcome::Downloaded)))),
                "chunk {chunk}: {outcomes:?}"
            );
            for (name, data) in &files {
                assert_eq!(&std::fs::read(dir.path().join(name)).unwrap(), data);
                std::fs::remove_file(dir.path().join(name)).unwrap();
            }
        }
    }

    #[test]
    fn a_lying_entry_is_refused_and_leaves_no_part() {
        let dir = tempfile::tempdir().unwrap();
        let good = job(dir.path(), "a.dcm", b"the real bytes");
        let refs = [&good];
        let zip = streamed_zip(&[("a.dcm", b"the fake bytes")]);
        let (result, outcomes) = run(&refs, &zip, 3);
        // Found when the batch is hashed, at the end of the zip.
        assert!(matches!(result, Ok(true)), "{result:?}");
        assert!(matches!(
            outcomes[0],
            ZipOutcome::Done(Err(ClientError::Decode { .. }))
        ));
        assert!(!good.dest.exists());
        assert!(!part_path(&good.dest).exists());
    }

    /// `count` listed files of unequal sizes, their zip entries named as
    /// the server names them, and the zip.
    fn many(dir: &Path, count: usize) -> (Vec<FileJob>, Vec<Vec<u8>>) {
        let contents: Vec<Vec<u8>> = (0..count)
            .map(|k| (0..1000 + 997 * k).map(|i| (i * 31 + k) as u8).collect())
            .collect();
        let jobs = contents
            .iter()
            .enumerate()
            .map(|(k, data)| job(dir, &format!("f{k:02}.dcm"), data))
            .collect();
        (jobs, contents)
    }

    fn zip_named(jobs: &[FileJob], contents: &[Vec<u8>]) -> Vec<u8> {
        let named: Vec<(String, &[u8])> = jobs
            .iter()
            .zip(contents)
            .map(|(j, d)| {
                (
                    format!("S1/scans/1-T/resources/DICOM/files/{}", j.remote.path),
                    d.as_slice(),
                )
            })
            .collect();
        let entries: Vec<(&str, &[u8])> = named.iter().map(|(n, d)| (n.as_str(), *d)).collect();
        streamed_zip(&entries)
    }

    #[test]
    fn entries_are_verified_in_batches_and_each_settles_on_its_own_digest() {
        let dir = tempfile::tempdir().unwrap();
        // Three batches: 16 + 16 + 8.
        let (jobs, mut contents) = many(dir.path(), 2 * BATCH_FILES + 8);
        let refs: Vec<&FileJob> = jobs.iter().collect();
        let bad = BATCH_FILES + 4;
        contents[bad][500] ^= 0xff;
        let zip = zip_named(&jobs, &contents);
        let (result, outcomes) = run(&refs, &zip, 4096);
        // Found when the second batch was hashed: the zip stopped there.
        assert!(
            matches!(&result, Err(reason) if reason.contains("MD5")),
            "{result:?}"
        );
        for (k, (outcome, job)) in outcomes.iter().zip(&jobs).enumerate() {
            if k < 2 * BATCH_FILES && k != bad {
                // Received whole and verified, the bad one's batch-mates too.
                assert!(
                    matches!(outcome, ZipOutcome::Done(Ok(FileOutcome::Downloaded))),
                    "{k}: {outcome:?}"
                );
                assert_eq!(std::fs::read(&job.dest).unwrap(), contents[k]);
            } else {
                // The bad one and those after its batch: refused, with the
                // reason, and nothing under a final or a `.part` name.
                let ZipOutcome::Done(Err(ClientError::Decode { reason, .. })) = outcome else {
                    panic!("{k}: {outcome:?}");
                };
                assert!(
                    reason.contains("f20.dcm") && reason.contains("not the listing's"),
                    "{reason}"
                );
                assert!(!job.dest.exists(), "{k}");
                assert!(!part_path(&job.dest).exists(), "{k}");
            }
        }
    }

    #[test]
    fn a_zip_cut_mid_entry_still_verifies_what_came_whole() {
        let dir = tempfile::tempdir().unwrap();
        let (jobs, contents) = many(dir.path(), 10);
        let refs: Vec<&FileJob> = jobs.iter().collect();
        let zip = zip_named(&jobs, &contents);
        // Cut half-way through the seventh entry's bytes.
        let seventh = zip
            .windows(contents[6].len())
            .position(|w| w == contents[6].as_slice())
            .unwrap();
        let cut = &zip[..seventh + contents[6].len() / 2];
        let (result, outcomes) = run(&refs, cut, 1000);
        assert!(matches!(result, Ok(false)), "{result:?}");
        for (k, (outcome, job)) in outcomes.iter().zip(&jobs).enumerate() {
            if k < 6 {
                assert!(
                    matches!(outcome, ZipOutcome::Done(Ok(FileOutcome::Downloaded))),
                    "{k}: {outcome:?}"
                );
                assert_eq!(std::fs::read(&job.dest).unwrap(), contents[k]);
            } else {
                // Left to single downloads; the cut one resumes its `.part`.
                assert!(
                    matches!(outcome, ZipOutcome::FetchAlone),
                    "{k}: {outcome:?}"
                );
                assert!(!job.dest.exists(), "{k}");
                assert_eq!(part_path(&job.dest).exists(), k == 6, "{k}");
            }
        }
        let part = std::fs::read(part_path(&jobs[6].dest)).unwrap();
        assert_eq!(part, contents[6][..contents[6].len() / 2]);
    }

    #[test]
    fn large_entries_are_hashed_on_the_way_and_settle_among_the_batched() {
        let dir = tempfile::tempdir().unwrap();
        let large = usize::try_from(HASH_ON_THE_WAY).unwrap() + 1;
        let contents: Vec<Vec<u8>> = vec![
            vec![1; 3000],
            (0..large).map(|i| (i % 251) as u8).collect(),
            vec![3; 5000],
            (0..large).map(|i| (i % 241) as u8).collect(),
        ];
        let jobs: Vec<FileJob> = contents
            .iter()
            .enumerate()
            .map(|(k, data)| job(dir.path(), &format!("f{k:02}.dcm"), data))
            .collect();
        let refs: Vec<&FileJob> = jobs.iter().collect();
        let mut sent = contents.clone();
        sent[3][large / 2] ^= 0xff;
        let zip = zip_named(&jobs, &sent);
        let (result, outcomes) = run(&refs, &zip, 64 << 10);
        assert!(
            matches!(&result, Err(reason) if reason.contains("f03.dcm")),
            "{result:?}"
        );
        for k in 0..3 {
            assert!(
                matches!(outcomes[k], ZipOutcome::Done(Ok(FileOutcome::Downloaded))),
                "{k}: {:?}",
                outcomes[k]
            );
            assert_eq!(std::fs::read(&jobs[k].dest).unwrap(), contents[k]);
        }
        assert!(matches!(
            outcomes[3],
            ZipOutcome::Done(Err(ClientError::Decode { .. }))
        ));
        assert!(!jobs[3].dest.exists());
        assert!(!part_path(&jobs[3].dest).exists());
    }
}
