//! Decoding `2dseq` frames and fitting them into 16-bit DICOM pixels.
//!
//! The classic MR Image IOD only allows 16-bit pixels, so 32-bit integer and
//! float data are requantised per image with a rescale chosen to keep the real
//! values (to half a stored step).

use crate::visu::{ByteOrder, WordType};

/// One decoded plane in its stored type.
#[derive(Debug, Clone, PartialEq)]
pub enum Stored {
    U8(Vec<u8>),
    I16(Vec<i16>),
    I32(Vec<i32>),
    F32(Vec<f32>),
}

/// Decode raw `2dseq` bytes (a whole number of words) as `word_type`.
pub fn decode(bytes: &[u8], word_type: WordType, order: ByteOrder) -> Stored {
    let little = order == ByteOrder::Little;
    match word_type {
        WordType::U8 => Stored::U8(bytes.to_vec()),
        WordType::I16 => Stored::I16(
            bytes
                .chunks_exact(2)
                .map(|c| {
                    let b = [c[0], c[1]];
                    if little {
                        i16::from_le_bytes(b)
                    } else {
                        i16::from_be_bytes(b)
                    }
                })
                .collect(),
        ),
        WordType::I32 => Stored::I32(
            bytes
                .chunks_exact(4)
                .map(|c| {
                    let b = [c[0], c[1], c[2], c[3]];
                    if little {
                        i32::from_le_bytes(b)
                    } else {
                        i32::from_be_bytes(b)
                    }
                })
                .collect(),
        ),
        WordType::F32 => Stored::F32(
            bytes
                .chunks_exact(4)
                .map(|c| {
                    let b = [c[0], c[1], c[2], c[3]];
                    if little {
                        f32::from_le_bytes(b)
                    } else {
                        f32::from_be_bytes(b)
                    }
                })
                .collect(),
        ),
    }
}

/// 16-bit pixels ready for DICOM with the rescale that gives real values.
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    /// Raw 16-bit words (two's complement when `signed`).
    pub words: Vec<u16>,
    pub signed: bool,
    /// Exactly as written to RescaleSlope / RescaleIntercept (DS text), so
    /// that a reader reproduces what we computed.
    pub slope: String,
    pub intercept: String,
    /// Real-value range, for the display window.
    pub real_min: f64,
    pub real_max: f64,
    /// Pixels that were NaN or infinite in the source and were stored as the minimum.
    pub non_finite: usize,
}

/// Encode one plane whose real value is `slope * stored + offset`.
pub fn encode(stored: &Stored, slope: f64, offset: f64) -> Encoded {
    match stored {
        Stored::I16(values) => {
            let (lo, hi) = min_max(values.iter().map(|&v| f64::from(v)));
            lossless(
                values.iter().map(|&v| v as u16).collect(),
                true,
                slope,
                offset,
                (lo, hi),
            )
        }
        Stored::U8(values) => {
            let (lo, hi) = min_max(values.iter().map(|&v| f64::from(v)));
            lossless(
                values.iter().map(|&v| u16::from(v)).collect(),
                false,
                slope,
                offset,
                (lo, hi),
            )
        }
        Stored::I32(values) => {
            let lo = values.iter().copied().min().unwrap_or(0);
            let hi = values.iter().copied().max().unwrap_or(0);
            if i64::from(hi) - i64::from(lo) <= i64::from(u16::MAX) {
                // The integers fit in 16 bits after removing the minimum: shift, don't requantise.
                let intercept = offset + slope * f64::from(lo);
                let words = values
                    .iter()
                    .map(|&v| (i64::from(v) - i64::from(lo)) as u16)
                    .collect();
                lossless(
                    words,
                    false,
                    slope,
                    intercept,
                    (0.0, f64::from(hi) - f64::from(lo)),
                )
            } else {
                requantise(
                    values.iter().map(|&v| slope * f64::from(v) + offset),
                    values.len(),
                )
            }
        }
        Stored::F32(values) => requantise(
            values.iter().map(|&v| slope * f64::from(v) + offset),
            values.len(),
        ),
    }
}

fn min_max(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if lo > hi { (0.0, 0.0) } else { (lo, hi) }
}

fn lossless(
    words: Vec<u16>,
    signed: bool,
    slope: f64,
    intercept: f64,
    (lo, hi): (f64, f64),
) -> Encoded {
    let slope_text = ds(slope);
    let intercept_text = ds(intercept);
    let s = slope_text.parse().unwrap_or(slope);
    let b = intercept_text.parse().unwrap_or(intercept);
    let (a, z) = (s * lo + b, s * hi + b);
    Encoded {
        words,
        signed,
        slope: slope_text,
        intercept: intercept_text,
        real_min: a.min(z),
        real_max: a.max(z),
        non_finite: 0,
    }
}

/// Map real values onto 0..=65535 with slope = range / 65535, intercept = min.
fn requantise(reals: impl Iterator<Item = f64> + Clone, len: usize) -> Encoded {
    let (lo, hi) = min_max(reals.clone());
    let (slope_text, intercept_text) = if hi > lo {
        (ds((hi - lo) / f64::from(u16::MAX)), ds(lo))
    } else {
        ("1".to_owned(), ds(lo))
    };
    // Quantise against the values a reader will see after DS rounding.
    let s: f64 = slope_text.parse().unwrap_or(1.0);
    let b: f64 = intercept_text.parse().unwrap_or(lo);
    let mut non_finite = 0;
    let mut words = Vec::with_capacity(len);
    for real in reals {
        if !real.is_finite() {
            non_finite += 1;
            words.push(0);
            continue;
        }
        let q = ((real - b) / s).round().clamp(0.0, f64::from(u16::MAX));
        words.push(q as u16);
    }
    Encoded {
        words,
        signed: false,
        slope: slope_text,
        intercept: intercept_text,
        real_min: lo,
        real_max: hi,
        non_finite,
    }
}

/// A DICOM Decimal String (at most 16 characters) as close to `v` as fits.
pub fn ds(v: f64) -> String {
    if !v.is_finite() {
        return "0".to_owned();
    }
    let plain = format!("{v}");
    if plain.len() <= 16 {
        return plain;
    }
    let mut best = String::new();
    for precision in (0..=15).rev() {
        let fixed = trim_fraction(format!("{v:.precision$}"));
        if fixed.len() <= 16 && fixed.parse::<f64>().is_ok_and(|f| f != 0.0 || v == 0.0) {
            best = fixed;
            break;
        }
    }
    for precision in (0..=15).rev() {
        let sci = format!("{v:.precision$e}");
        if sci.len() <= 16 {
            let better = best.parse::<f64>().map_or(true, |b| {
                (b - v).abs() > (sci.parse::<f64>().unwrap_or(f64::MAX) - v).abs()
            });
            if better {
                best = sci;
            }
            break;
        }
    }
    best
}

fn trim_fraction(text: String) -> String {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ds_fits_and_round_trips_closely() {
        for v in [
            0.0,
            11.0270188718677,
            -1.0 / 3.0,
            1e-20,
            6.02e23,
            -123456.789012345,
            9.17583461287342e-5,
        ] {
            let text = ds(v);
            assert!(text.len() <= 16, "{text}");
            let back: f64 = text.parse().unwrap();
            assert!((back - v).abs() <= v.abs() * 1e-9, "{v} -> {text}");
        }
    }

    #[test]
    fn sixteen_bit_is_copied_losslessly() {
        let stored = Stored::I16(vec![-3, 0, 32767]);
        let e = encode(&stored, 2.5, 1.0);
        assert_eq!(e.words, vec![(-3i16) as u16, 0, 32767]);
        assert!(e.signed);
        assert_eq!((e.slope.as_str(), e.intercept.as_str()), ("2.5", "1"));
    }

    #[test]
    fn narrow_int32_is_shifted_not_requantised() {
        let stored = Stored::I32(vec![100_000, 100_007, 150_000]);
        let e = encode(&stored, 0.5, -2.0);
        let s: f64 = e.slope.parse().unwrap();
        let b: f64 = e.intercept.parse().unwrap();
        for (w, v) in e.words.iter().zip([100_000.0, 100_007.0, 150_000.0]) {
            assert_eq!(s * f64::from(*w) + b, 0.5 * v - 2.0);
        }
    }

    #[test]
    fn wide_and_float_data_keep_real_values_within_half_a_step() {
        let values: Vec<f32> = (0..1000)
            .map(|i| (i as f32 * 0.37).sin() * 1e4 - 77.0)
            .collect();
        let e = encode(&Stored::F32(values.clone()), 3.0, 0.25);
        let s: f64 = e.slope.parse().unwrap();
        let b: f64 = e.intercept.parse().unwrap();
        for (w, v) in e.words.iter().zip(&values) {
            let real = 3.0 * f64::from(*v) + 0.25;
            assert!((s * f64::from(*w) + b - real).abs() <= s / 2.0 + 1e-9);
        }
        let wide = Stored::I32(vec![-2_000_000_000, 0, 2_000_000_000]);
        let e = encode(&wide, 1.0, 0.0);
        let s: f64 = e.slope.parse().unwrap();
        let b: f64 = e.intercept.parse().unwrap();
        assert!((s * f64::from(e.words[2]) + b - 2e9).abs() <= s / 2.0 + 1e-3);
    }

    #[test]
    fn constant_and_non_finite_planes_do_not_divide_by_zero() {
        let e = encode(&Stored::F32(vec![5.0, 5.0, f32::NAN]), 1.0, 0.0);
        assert_eq!(e.slope, "1");
        assert_eq!(e.intercept, "5");
        assert_eq!(e.non_finite, 1);
    }

    #[test]
    fn byte_orders_decode() {
        let le = decode(&[1, 0, 0, 1], WordType::I16, ByteOrder::Little);
        let be = decode(&[1, 0, 0, 1], WordType::I16, ByteOrder::Big);
        assert_eq!(le, Stored::I16(vec![1, 256]));
        assert_eq!(be, Stored::I16(vec![256, 1]));
    }
}
