//! NIfTI-1 in and out. Writing is our own small encoder (a 348-byte header,
//! float32 voxels, gzip via flate2) rather than the `nifti` crate's writer,
//! because that writer only writes to a path: we write to a temporary file
//! that is renamed only when every output of a run exists (no partial
//! output on error), streaming (no uncompressed copy in memory), and the
//! same input must give the same bytes (gzip header without a timestamp).
//! Reading uses the `nifti` crate.

// The header and affine code index 4×4 matrices explicitly on purpose.
#![allow(clippy::needless_range_loop)]

use std::io::Write;

use flate2::{FlushCompress, Status};
use std::path::Path;

use nifti::{IntoNdArray, NiftiObject, ReaderOptions};

use crate::Error;
use crate::geometry::Grid;

const HEADER_BYTES: usize = 348;

fn put_i16(h: &mut [u8], at: usize, v: i16) {
    h[at..at + 2].copy_from_slice(&v.to_le_bytes());
}
fn put_i32(h: &mut [u8], at: usize, v: i32) {
    h[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
fn put_f32(h: &mut [u8], at: usize, v: f32) {
    h[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// Quaternion (b, c, d) and qfac of the rotation part of `m` (columns
/// normalised), as NIfTI-1's `nifti_mat44_to_quatern` computes them.
fn quaternion(m: &[[f64; 4]; 4]) -> ([f64; 3], f64) {
    let mut r = [[0.0; 3]; 3];
    for c in 0..3 {
        let len = (0..3).map(|i| m[i][c] * m[i][c]).sum::<f64>().sqrt();
        for i in 0..3 {
            r[i][c] = if len > 0.0 { m[i][c] / len } else { 0.0 };
        }
    }
    let det = r[0][0] * (r[1][1] * r[2][2] - r[1][2] * r[2][1])
        - r[0][1] * (r[1][0] * r[2][2] - r[1][2] * r[2][0])
        + r[0][2] * (r[1][0] * r[2][1] - r[1][1] * r[2][0]);
    let qfac = if det < 0.0 {
        for row in &mut r {
            row[2] = -row[2];
        }
        -1.0
    } else {
        1.0
    };
    let a = r[0][0] + r[1][1] + r[2][2] + 1.0;
    let (b, c, d);
    if a > 0.5 {
        let a = 0.5 * a.sqrt();
        b = 0.25 * (r[2][1] - r[1][2]) / a;
        c = 0.25 * (r[0][2] - r[2][0]) / a;
        d = 0.25 * (r[1][0] - r[0][1]) / a;
    } else {
        let xd = 1.0 + r[0][0] - (r[1][1] + r[2][2]);
        let yd = 1.0 + r[1][1] - (r[0][0] + r[2][2]);
        let zd = 1.0 + r[2][2] - (r[0][0] + r[1][1]);
        let (mut qa, mut qb, mut qc, mut qd);
        if xd > 1.0 {
            qb = 0.5 * xd.sqrt();
            qc = 0.25 * (r[0][1] + r[1][0]) / qb;
            qd = 0.25 * (r[0][2] + r[2][0]) / qb;
            qa = 0.25 * (r[2][1] - r[1][2]) / qb;
        } else if yd > 1.0 {
            qc = 0.5 * yd.sqrt();
            qb = 0.25 * (r[0][1] + r[1][0]) / qc;
            qd = 0.25 * (r[1][2] + r[2][1]) / qc;
            qa = 0.25 * (r[0][2] - r[2][0]) / qc;
        } else {
            qd = 0.5 * zd.sqrt();
            qb = 0.25 * (r[0][2] + r[2][0]) / qd;
            qc = 0.25 * (r[1][2] + r[2][1]) / qd;
            qa = 0.25 * (r[1][0] - r[0][1]) / qd;
        }
        if qa < 0.0 {
            qa = -qa;
            qb = -qb;
            qc = -qc;
            qd = -qd;
        }
        let _ = qa;
        b = qb;
        c = qc;
        d = qd;
    }
    ([b, c, d], qfac)
}

/// `data` (x fastest) on `grid` as gzipped NIfTI-1 bytes, float32, with the
/// grid's RAS affine as both sform and qform (code 1, scanner).
pub fn encode(grid: &Grid, data: &[f32], description: &str, unit_is_seconds: bool) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = write(&mut out, grid, data, description, unit_is_seconds);
    out
}

/// [`encode`] into `out`, the voxels converted and compressed in pieces.
pub fn write(
    out: &mut dyn Write,
    grid: &Grid,
    data: &[f32],
    description: &str,
    unit_is_seconds: bool,
) -> std::io::Result<()> {
    let copy = |first: usize, piece: &mut [f32]| {
        let values = data.get(first..first + piece.len()).ok_or_else(|| {
            std::io::Error::other(format!(
                "{} voxels for a grid of {}",
                data.len(),
                grid.len()
            ))
        })?;
        piece.copy_from_slice(values);
        Ok(())
    };
    write_from(out, grid, &copy, description, unit_is_seconds)
}

/// Voxels `first..first + piece.len()` (x fastest) of an image into
/// `piece`: how [`write_from`] takes an image that is not in memory whole.
pub type FillVoxels<'a> = dyn Fn(usize, &mut [f32]) -> std::io::Result<()> + Sync + 'a;

/// [`write`] of an image the writer asks for piece by piece (`fill`), so
/// at most a few pieces of it are in memory at once.
pub fn write_from(
    out: &mut dyn Write,
    grid: &Grid,
    fill: &FillVoxels<'_>,
    description: &str,
    unit_is_seconds: bool,
) -> std::io::Result<()> {
    let mut h = vec![0u8; HEADER_BYTES + 4];
    put_i32(&mut h, 0, HEADER_BYTES as i32);
    h[38] = b'r';
    let dims = [
        3i16,
        grid.cols as i16,
        grid.rows as i16,
        grid.slices() as i16,
        1,
        1,
        1,
        1,
    ];
    for (k, d) in dims.iter().enumerate() {
        put_i16(&mut h, 40 + 2 * k, *d);
    }
    put_i16(&mut h, 70, 16); // FLOAT32
    put_i16(&mut h, 72, 32);
    let m = grid.affine_ras();
    let (q, qfac) = quaternion(&m);
    let voxel = [
        grid.spacing[1],
        grid.spacing[0],
        (0..3).map(|i| m[i][2] * m[i][2]).sum::<f64>().sqrt(),
    ];
    put_f32(&mut h, 76, qfac as f32);
    for (k, v) in voxel.iter().enumerate() {
        put_f32(&mut h, 80 + 4 * k, *v as f32);
    }
    put_f32(&mut h, 108, (HEADER_BYTES + 4) as f32);
    put_f32(&mut h, 112, 1.0);
    h[123] = if unit_is_seconds { 2 | 8 } else { 2 };
    let text = description.as_bytes();
    let n = text.len().min(79);
    h[148..148 + n].copy_from_slice(&text[..n]);
    put_i16(&mut h, 252, 1);
    put_i16(&mut h, 254, 1);
    for (k, v) in q.iter().enumerate() {
        put_f32(&mut h, 256 + 4 * k, *v as f32);
    }
    for i in 0..3 {
        put_f32(&mut h, 268 + 4 * i, m[i][3] as f32);
        for j in 0..4 {
            put_f32(&mut h, 280 + 16 * i + 4 * j, m[i][j] as f32);
        }
    }
    h[344..348].copy_from_slice(b"n+1\0");
    write_gzip(out, &h, grid.len(), fill)
}

/// Uncompressed bytes per independently compressed piece of a NIfTI file.
/// Fixed (not derived from the number of cores), so the same input gives
/// the same bytes on any machine.
const PIECE_BYTES: usize = 512 * 1024;

/// gzip of `header` then `data` (little-endian float32) as one gzip member
/// (readers that stop after the first member, such as the `nifti` crate's,
/// read it whole). The deflate stream is made of pieces compressed on all
/// cores at once, each from an empty window and ended by a sync flush (an
/// empty stored block, so the next starts on a byte boundary), the last
/// one final; the CRC-32 is combined from the pieces'. As `pigz` does,
/// minus the window carried over: a slightly larger file, same contents.
fn write_gzip(
    out: &mut dyn Write,
    header: &[u8],
    voxels: usize,
    fill: &FillVoxels<'_>,
) -> std::io::Result<()> {
    // No file name or time stamp, so the bytes depend on the data only;
    // XFL 0 (level 6), OS 255 (unknown), as flate2's GzBuilder writes.
    out.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255])?;
    const FLOATS: usize = PIECE_BYTES / 4;
    let pieces = voxels.div_ceil(FLOATS).max(1);
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(pieces);
    let mut crc = flate2::Crc::new();
    let mut size: u64 = 0;
    // Each worker's buffers and compressor are made here, once, and lent
    // to it piece after piece: memory a worker thread allocates itself stays
    // in that thread's malloc arena after it ends (about 2 MB a thread).
    let mut buffers: Vec<PieceBuffers> = (0..workers).map(|_| PieceBuffers::new()).collect();
    // `workers` pieces at a time, written in order before the next ones are
    // made: at most that many pieces in memory.
    for round in (0..pieces).collect::<Vec<_>>().chunks(workers) {
        let made: Vec<std::io::Result<()>> = std::thread::scope(|scope| {
            let handles: Vec<_> = round
                .iter()
                .zip(buffers.iter_mut())
                .map(|(&k, piece)| {
                    scope.spawn(move || {
                        let first = (k * FLOATS).min(voxels);
                        piece.floats.clear();
                        piece
                            .floats
                            .resize(((k + 1) * FLOATS).min(voxels) - first, 0.0);
                        fill(first, &mut piece.floats)?;
                        piece.crc.reset();
                        piece.compress.reset();
                        piece.deflated.clear();
                        let header = if k == 0 { header } else { &[][..] };
                        piece.crc.update(header);
                        deflate_into(
                            &mut piece.compress,
                            header,
                            FlushCompress::None,
                            &mut piece.deflated,
                        )?;
                        // The values' bytes a chunk at a time: no second
                        // copy of the piece.
                        for values in piece.floats.chunks(CHUNK_FLOATS) {
                            piece.bytes.clear();
                            for v in values {
                                piece.bytes.extend_from_slice(&v.to_le_bytes());
                            }
                            piece.crc.update(&piece.bytes);
                            deflate_into(
                                &mut piece.compress,
                                &piece.bytes,
                                FlushCompress::None,
                                &mut piece.deflated,
                            )?;
                        }
                        let end = match k + 1 == pieces {
                            true => FlushCompress::Finish,
                            false => FlushCompress::Sync,
                        };
                        deflate_into(&mut piece.compress, &[], end, &mut piece.deflated)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(std::io::Error::other("a compression thread panicked"))
                    })
                })
                .collect()
        });
        for (done, piece) in made.into_iter().zip(&buffers) {
            done?;
            out.write_all(&piece.deflated)?;
            crc.combine(&piece.crc);
            size += piece.compress.total_in();
        }
    }
    out.write_all(&crc.sum().to_le_bytes())?;
    // ISIZE: the length modulo 2³², as RFC 1952 has it.
    out.write_all(&(size as u32).to_le_bytes())?;
    Ok(())
}

/// Values converted to bytes and compressed at a time (64 KiB).
const CHUNK_FLOATS: usize = 16 * 1024;

/// One worker's piece: its values, a chunk of them as bytes, the compressed
/// bytes, their CRC-32 and the compressor (reset for each piece).
struct PieceBuffers {
    floats: Vec<f32>,
    bytes: Vec<u8>,
    deflated: Vec<u8>,
    crc: flate2::Crc,
    compress: flate2::Compress,
}

impl PieceBuffers {
    fn new() -> PieceBuffers {
        PieceBuffers {
            floats: Vec::new(),
            bytes: Vec::with_capacity(CHUNK_FLOATS * 4),
            deflated: Vec::new(),
            crc: flate2::Crc::new(),
            compress: flate2::Compress::new(flate2::Compression::new(6), false),
        }
    }
}

/// Raw deflate (level 6) of `input` appended to `out`. `FlushCompress::None`
/// returns once all the input is taken in (the compressor may hold some of
/// it back); `Sync` ends the piece with an empty stored block, so the next
/// piece starts on a byte boundary; `Finish` ends the stream.
fn deflate_into(
    compress: &mut flate2::Compress,
    input: &[u8],
    flush: FlushCompress,
    out: &mut Vec<u8>,
) -> std::io::Result<()> {
    let start = compress.total_in();
    loop {
        if out.len() == out.capacity() {
            out.reserve(64 * 1024);
        }
        let before = (compress.total_in(), compress.total_out());
        let consumed = usize::try_from(before.0 - start).unwrap_or(input.len());
        let status = compress
            .compress_vec(&input[consumed.min(input.len())..], out, flush)
            .map_err(std::io::Error::other)?;
        let all_in = compress.total_in() - start == input.len() as u64;
        let room = out.len() < out.capacity();
        match (status, flush) {
            (Status::StreamEnd, _) => return Ok(()),
            (_, FlushCompress::None) if all_in => return Ok(()),
            // A sync flush is complete when all input is in and the output
            // had room left (nothing more pending).
            (Status::Ok | Status::BufError, FlushCompress::Sync) if all_in && room => {
                return Ok(());
            }
            _ if room && before == (compress.total_in(), compress.total_out()) => {
                return Err(std::io::Error::other("deflate made no progress"));
            }
            _ => {}
        }
    }
}

/// A 3-D map read from NIfTI: its grid (LPS, from sform, else qform, else
/// pixdim) and voxels, x fastest.
pub fn read_map(path: &Path) -> Result<(Grid, Vec<f32>), Error> {
    let err = |reason: String| Error::Nifti {
        path: path.to_owned(),
        reason,
    };
    let object = ReaderOptions::new()
        .read_file(path)
        .map_err(|e| err(e.to_string()))?;
    let header = object.header().clone();
    let array = object
        .into_volume()
        .into_ndarray::<f64>()
        .map_err(|e| err(e.to_string()))?;
    let shape = array.shape().to_vec();
    if shape.len() < 2 || shape.len() > 4 || shape.iter().skip(3).any(|&d| d != 1) {
        return Err(err(format!(
            "dimensions {shape:?}; a map is one 2-D or 3-D image"
        )));
    }
    let dims = [shape[0], shape[1], shape.get(2).copied().unwrap_or(1)];
    let data: Vec<f32> = array.t().iter().map(|&v| v as f32).collect();
    let pixdim = header.pixdim;
    let mut m = [[0.0f64; 4]; 4];
    m[3][3] = 1.0;
    if header.sform_code > 0 {
        for j in 0..4 {
            m[0][j] = header.srow_x[j] as f64;
            m[1][j] = header.srow_y[j] as f64;
            m[2][j] = header.srow_z[j] as f64;
        }
    } else if header.qform_code > 0 {
        let (b, c, d) = (
            header.quatern_b as f64,
            header.quatern_c as f64,
            header.quatern_d as f64,
        );
        let a = (1.0 - (b * b + c * c + d * d)).max(0.0).sqrt();
        let r = [
            [
                a * a + b * b - c * c - d * d,
                2.0 * (b * c - a * d),
                2.0 * (b * d + a * c),
            ],
            [
                2.0 * (b * c + a * d),
                a * a + c * c - b * b - d * d,
                2.0 * (c * d - a * b),
            ],
            [
                2.0 * (b * d - a * c),
                2.0 * (c * d + a * b),
                a * a + d * d - c * c - b * b,
            ],
        ];
        let qfac = if pixdim[0] < 0.0 { -1.0 } else { 1.0 };
        let scale = [pixdim[1] as f64, pixdim[2] as f64, pixdim[3] as f64 * qfac];
        for i in 0..3 {
            for j in 0..3 {
                m[i][j] = r[i][j] * scale[j];
            }
        }
        m[0][3] = header.quatern_x as f64;
        m[1][3] = header.quatern_y as f64;
        m[2][3] = header.quatern_z as f64;
    } else {
        for k in 0..3 {
            m[k][k] = (pixdim[k + 1] as f64).abs().max(1e-6);
        }
    }
    // RAS → LPS.
    for row in m.iter_mut().take(2) {
        for v in row.iter_mut() {
            *v = -*v;
        }
    }
    Ok((Grid::from_affine_lps(m, dims, None), data))
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    /// What the NIfTI file holds uncompressed: the header, then the voxels.
    fn decompressed(gz: &[u8]) -> Vec<u8> {
        // GzDecoder reads the first gzip member only, like the nifti crate.
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(gz)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn pieces_make_one_gzip_member_with_the_same_contents() {
        let header: Vec<u8> = (0..352).map(|i| (i % 251) as u8).collect();
        for floats in [0, 1, 1000, PIECE_BYTES / 4, PIECE_BYTES / 4 + 1, 700_001] {
            let data: Vec<f32> = (0..floats)
                .map(|i| ((i as f32) * 0.37).sin() * 1000.0 * ((i % 7) as f32))
                .collect();
            // Handed over in pieces, as the maps' results are.
            let fill = |first: usize, piece: &mut [f32]| {
                piece.copy_from_slice(&data[first..first + piece.len()]);
                Ok(())
            };
            let mut gz = Vec::new();
            write_gzip(&mut gz, &header, data.len(), &fill).unwrap();
            let mut expected = header.clone();
            for v in &data {
                expected.extend_from_slice(&v.to_le_bytes());
            }
            assert_eq!(decompressed(&gz), expected, "{floats} floats");
            let mut again = Vec::new();
            write_gzip(&mut again, &header, data.len(), &fill).unwrap();
            assert_eq!(gz, again, "reruns give the same bytes ({floats} floats)");
        }
    }
}
