//! Draining an async byte stream (an HTTP body) into an [`AtomicFile`].

use std::path::Path;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;

use crate::{AtomicFile, Error, StoredFile};

/// Chunks in flight between the async reader and the blocking writer; keeps
/// memory bounded when the disk is slower than the network.
const CHUNKS_IN_FLIGHT: usize = 8;

enum Message {
    Data(Bytes),
    /// The stream ended normally: commit. Without this message a closed
    /// channel means the caller's future was dropped, and nothing is stored.
    Finish,
}

/// Drains `stream` into `dest` atomically, returning size and MD5.
///
/// The blocking file writes run on a `tokio::task::spawn_blocking` thread fed
/// through a bounded channel (not `block_in_place`, which panics on a
/// current-thread runtime). If the stream yields an error, exceeds
/// `max_bytes`, or this future is dropped, the temp file is removed and
/// `dest` is untouched. Must be called inside a Tokio runtime.
pub async fn write_stream_atomic<S, E>(
    dest: &Path,
    mut stream: S,
    max_bytes: Option<u64>,
) -> Result<StoredFile, Error>
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
    E: std::error::Error + Send + Sync + 'static,
{
    let (tx, rx) = mpsc::channel(CHUNKS_IN_FLIGHT);
    let dest_owned = dest.to_path_buf();
    let writer = tokio::task::spawn_blocking(move || write_messages(&dest_owned, rx, max_bytes));
    let mut stream_error = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(chunk) if chunk.is_empty() => {}
            Ok(chunk) => {
                if tx.send(Message::Data(chunk)).await.is_err() {
                    // The writer stopped early; its result says why.
                    break;
                }
            }
            Err(e) => {
                stream_error = Some(e);
                break;
            }
        }
    }
    if stream_error.is_none() {
        // Ignoring a send failure is right: the writer already finished with
        // an error, which the join below reports.
        let _ = tx.send(Message::Finish).await;
    }
    drop(tx);
    let written = writer.await.map_err(|join_err| Error::Stream {
        path: dest.to_path_buf(),
        source: Box::new(join_err),
    })?;
    match stream_error {
        Some(e) => Err(Error::Stream {
            path: dest.to_path_buf(),
            source: Box::new(e),
        }),
        None => written,
    }
}

fn write_messages(
    dest: &Path,
    mut rx: mpsc::Receiver<Message>,
    max_bytes: Option<u64>,
) -> Result<StoredFile, Error> {
    let mut file = AtomicFile::create(dest, max_bytes)?;
    while let Some(message) = rx.blocking_recv() {
        match message {
            Message::Data(chunk) => file.write_all(&chunk)?,
            Message::Finish => return file.commit(),
        }
    }
    // Dropping `file` removes the temp file.
    Err(Error::Cancelled {
        path: dest.to_path_buf(),
    })
}
