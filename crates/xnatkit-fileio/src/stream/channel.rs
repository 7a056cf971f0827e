//! The bridge from a synchronous archive writer on a blocking thread to an
//! async [`Stream`] of [`Bytes`], with bounded memory.
//!
//! The producer writes into a [`ChannelWriter`], which cuts the output into
//! [`CHUNK_BYTES`] chunks and hands them to a Tokio channel of
//! [`CHUNKS_IN_FLIGHT`] slots. When the consumer is slower than the
//! producer, `blocking_send` waits, so at most about `CHUNKS_IN_FLIGHT + 1`
//! chunks (~1.25 MiB) exist per stream, however large the archive. When the
//! [`ByteStream`] is dropped (client disconnected) the next send fails with
//! `BrokenPipe` and the producer stops.

use std::io::{self, Write};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures::Stream;
use tokio::sync::{mpsc, oneshot};

/// Size of the chunks handed to the consumer. Each chunk costs a channel
/// hand-over and an HTTP body frame; 256 KiB keeps that overhead small next
/// to the copying of the bytes themselves (measured with
/// `bench/server-stream.sh`: 64 KiB chunks were visibly slower).
pub const CHUNK_BYTES: usize = 256 * 1024;
/// Capacity of the channel between producer thread and consumer.
pub const CHUNKS_IN_FLIGHT: usize = 4;

/// The byte stream of an archive being produced; implements
/// [`futures::Stream`] and so fits `axum::body::Body::from_stream`. After the
/// first error it yields nothing more.
#[derive(Debug)]
pub struct ByteStream {
    rx: mpsc::Receiver<Chunk>,
    done: bool,
}

#[derive(Debug)]
enum Chunk {
    Data(Bytes),
    Failed(io::Error),
    /// Sent after the last byte; a channel closed without it means the
    /// producer died, which must not look like a complete archive.
    End,
}

impl Stream for ByteStream {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        let item = match self.rx.poll_recv(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Some(Chunk::Data(bytes))) => return Poll::Ready(Some(Ok(bytes))),
            Poll::Ready(Some(Chunk::End)) => None,
            Poll::Ready(Some(Chunk::Failed(e))) => Some(Err(e)),
            Poll::Ready(None) => Some(Err(io::Error::other(
                "the archive producer stopped before finishing the archive",
            ))),
        };
        self.done = true;
        // Wakes a producer blocked on a full channel so it can stop.
        self.rx.close();
        Poll::Ready(item)
    }
}

/// What a finished producer reports; only tests look at it.
#[derive(Debug)]
#[cfg_attr(
    not(test),
    expect(dead_code, reason = "only tests inspect the producer")
)]
pub(crate) struct ProducerReport {
    pub(crate) result: oneshot::Receiver<io::Result<()>>,
    pub(crate) bytes_sent: Arc<AtomicU64>,
}

pub(crate) fn spawn_producer<F>(produce: F) -> (ByteStream, ProducerReport)
where
    F: FnOnce(ChannelWriter) -> io::Result<ChannelWriter> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(CHUNKS_IN_FLIGHT);
    let (report_tx, report_rx) = oneshot::channel();
    let bytes_sent = Arc::new(AtomicU64::new(0));
    let writer = ChannelWriter {
        tx: tx.clone(),
        buf: BytesMut::with_capacity(CHUNK_BYTES),
        bytes_sent: Arc::clone(&bytes_sent),
        abandoned: Arc::new(AtomicBool::new(false)),
    };
    let job = move || {
        let result = produce(writer).and_then(|mut writer| {
            writer.send_buffered()?;
            tx.blocking_send(Chunk::End).map_err(|_| receiver_gone())
        });
        if let Err(e) = &result
            && e.kind() != io::ErrorKind::BrokenPipe
        {
            // Only this clone of the error reaches the consumer; the report
            // keeps kind and text for tests.
            let copy = io::Error::new(e.kind(), e.to_string());
            // If the consumer is gone there is nobody left to tell.
            let _ = tx.blocking_send(Chunk::Failed(copy));
        }
        // Tests may have stopped listening; nothing else to do then.
        let _ = report_tx.send(result);
    };
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            // The JoinHandle is not needed: the outcome travels through the
            // channel and the report.
            drop(handle.spawn_blocking(job));
        }
        Err(_) => {
            drop(std::thread::spawn(job));
        }
    }
    (
        ByteStream { rx, done: false },
        ProducerReport {
            result: report_rx,
            bytes_sent,
        },
    )
}

/// `Write` adapter that chunks output into the channel.
#[derive(Debug)]
pub(crate) struct ChannelWriter {
    tx: mpsc::Sender<Chunk>,
    buf: BytesMut,
    bytes_sent: Arc<AtomicU64>,
    /// Set once the archive failed: further writes (zip's Drop finalising
    /// the archive) are discarded instead of sent after the error.
    abandoned: Arc<AtomicBool>,
}

impl ChannelWriter {
    pub(super) fn abandon_handle(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.abandoned)
    }

    fn send_buffered(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = self.buf.split().freeze();
        let len = chunk.len() as u64;
        self.tx
            .blocking_send(Chunk::Data(chunk))
            .map_err(|_| receiver_gone())?;
        self.bytes_sent.fetch_add(len, Ordering::Relaxed);
        self.buf.reserve(CHUNK_BYTES);
        Ok(())
    }
}

impl ChannelWriter {
    /// Sends an already-filled chunk as it is, after anything buffered:
    /// producers that read straight into their own buffers (plain file
    /// downloads) save the copy that `write` makes.
    pub(super) fn send_owned(&mut self, chunk: Bytes) -> io::Result<()> {
        if self.abandoned.load(Ordering::Relaxed) || chunk.is_empty() {
            return Ok(());
        }
        self.send_buffered()?;
        let len = chunk.len() as u64;
        self.tx
            .blocking_send(Chunk::Data(chunk))
            .map_err(|_| receiver_gone())?;
        self.bytes_sent.fetch_add(len, Ordering::Relaxed);
        Ok(())
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.abandoned.load(Ordering::Relaxed) {
            return Ok(data.len());
        }
        let room = CHUNK_BYTES - self.buf.len();
        let taken = room.min(data.len());
        self.buf.extend_from_slice(&data[..taken]);
        if self.buf.len() >= CHUNK_BYTES {
            self.send_buffered()?;
        }
        Ok(taken)
    }

    /// Deliberately does not send a short chunk: the writers flush after
    /// every entry, and the consumer gains nothing from tiny chunks. The rest
    /// is sent when the archive is complete.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn receiver_gone() -> io::Error {
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        "the receiver of the archive stream went away",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use std::time::Duration;

    /// A producer that would write `total` bytes as fast as it can.
    fn endless_producer(
        total: u64,
    ) -> impl FnOnce(ChannelWriter) -> io::Result<ChannelWriter> + Send + 'static {
        move |mut out| {
            let block = vec![1u8; 10_000];
            let mut written = 0;
            while written < total {
                out.write_all(&block)?;
                written += block.len() as u64;
            }
            Ok(out)
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn producer_waits_for_a_slow_consumer() {
        let (mut stream, report) = spawn_producer(endless_producer(1 << 30));
        let first = stream.next().await.unwrap().unwrap();
        assert_eq!(first.len(), CHUNK_BYTES);
        tokio::time::sleep(Duration::from_millis(300)).await;
        // Channel slots plus the chunk being sent, never the whole gigabyte.
        let in_flight = report.bytes_sent.load(Ordering::Relaxed);
        let bound = ((CHUNKS_IN_FLIGHT + 2) * CHUNK_BYTES) as u64;
        assert!(in_flight <= bound, "{in_flight} bytes produced ahead");
        drop(stream);
        let result = tokio::time::timeout(Duration::from_secs(10), report.result)
            .await
            .expect("producer did not stop after the consumer went away")
            .unwrap();
        assert_eq!(result.unwrap_err().kind(), io::ErrorKind::BrokenPipe);
    }

    #[tokio::test]
    async fn stream_after_error_yields_nothing_more() {
        let (mut stream, _report) = spawn_producer(|mut out| {
            out.write_all(&vec![0u8; CHUNK_BYTES + 10])?;
            Err(io::Error::other("source broke"))
        });
        assert!(stream.next().await.unwrap().is_ok());
        let err = stream.next().await.unwrap().unwrap_err();
        assert_eq!(err.to_string(), "source broke");
        assert!(stream.next().await.is_none());
    }

    #[test]
    fn byte_stream_fits_http_bodies() {
        // axum's Body::from_stream and reqwest's Body::wrap_stream need
        // Send + 'static; Sync and Unpin make it usable in more places.
        fn assert_traits<T: Stream + Send + Sync + Unpin + 'static>() {}
        assert_traits::<ByteStream>();
    }
}
