//! The SIMD kernels: MD5's block function on 16 (AVX-512F) or 8 (AVX2)
//! independent messages at once, one message per 32-bit lane.
//!
//! The 64 steps are written once ([`md5_block!`]) over a lane vector type
//! with `splat`, `add`, `rotl` and MD5's four boolean functions `f`, `g`,
//! `h`, `i`; [`V16`] and [`V8`] implement them with AVX-512F and AVX2
//! intrinsics. The message words arrive one lane per row (each lane's
//! 64-byte block) and are transposed in registers so that vector `w` holds
//! word `w` of every lane.
//!
//! `unsafe` here is of two kinds only: unaligned loads and stores through
//! pointers taken from slices at least as long as what is read or written,
//! and calls of the `#[target_feature]` kernels, which are made through the
//! [`Avx512`] and [`Avx2`] tokens that exist only once
//! `is_x86_feature_detected!` has found the feature (which includes the
//! operating system's support for the registers).

use std::arch::x86_64::{
    __m256i, __m512i, _mm256_add_epi32, _mm256_and_si256, _mm256_loadu_si256, _mm256_or_si256,
    _mm256_permute2x128_si256, _mm256_set1_epi32, _mm256_setzero_si256, _mm256_slli_epi32,
    _mm256_srli_epi32, _mm256_storeu_si256, _mm256_unpackhi_epi32, _mm256_unpackhi_epi64,
    _mm256_unpacklo_epi32, _mm256_unpacklo_epi64, _mm256_xor_si256, _mm512_add_epi32,
    _mm512_loadu_si512, _mm512_rol_epi32, _mm512_set1_epi32, _mm512_setzero_si512,
    _mm512_shuffle_i32x4, _mm512_storeu_si512, _mm512_ternarylogic_epi32, _mm512_unpackhi_epi32,
    _mm512_unpackhi_epi64, _mm512_unpacklo_epi32, _mm512_unpacklo_epi64,
};

/// One MD5 step: `a = b + ((a + f(b, c, d) + m[g] + k) <<< s)`.
macro_rules! step {
    ($v:ident, $m:ident, $f:ident, $a:ident, $b:ident, $c:ident, $d:ident, $g:literal, $k:literal, $s:literal) => {
        $a = $b.add(
            $a.add($v::$f($b, $c, $d))
                .add($m[$g].add($v::splat($k)))
                .rotl::<$s, { 32 - $s }>(),
        );
    };
}

/// MD5's 64 steps over one block of every lane: `$m` is the block's 16
/// words (vector `w` = word `w` of each lane), `$state` the chaining
/// values `[a, b, c, d]`; evaluates to the new chaining values.
macro_rules! md5_block {
    ($v:ident, $state:expr, $m:expr) => {{
        let m: &[$v; 16] = $m;
        let [a0, b0, c0, d0]: [$v; 4] = $state;
        let (mut a, mut b, mut c, mut d) = (a0, b0, c0, d0);
        // Round 1: F, message words in the order of RFC 1321.
        step!($v, m, f, a, b, c, d, 0, 0xd76aa478, 7);
        step!($v, m, f, d, a, b, c, 1, 0xe8c7b756, 12);
        step!($v, m, f, c, d, a, b, 2, 0x242070db, 17);
        step!($v, m, f, b, c, d, a, 3, 0xc1bdceee, 22);
        step!($v, m, f, a, b, c, d, 4, 0xf57c0faf, 7);
        step!($v, m, f, d, a, b, c, 5, 0x4787c62a, 12);
        step!($v, m, f, c, d, a, b, 6, 0xa8304613, 17);
        step!($v, m, f, b, c, d, a, 7, 0xfd469501, 22);
        step!($v, m, f, a, b, c, d, 8, 0x698098d8, 7);
        step!($v, m, f, d, a, b, c, 9, 0x8b44f7af, 12);
        step!($v, m, f, c, d, a, b, 10, 0xffff5bb1, 17);
        step!($v, m, f, b, c, d, a, 11, 0x895cd7be, 22);
        step!($v, m, f, a, b, c, d, 12, 0x6b901122, 7);
        step!($v, m, f, d, a, b, c, 13, 0xfd987193, 12);
        step!($v, m, f, c, d, a, b, 14, 0xa679438e, 17);
        step!($v, m, f, b, c, d, a, 15, 0x49b40821, 22);
        // Round 2: G, message words in the order of RFC 1321.
        step!($v, m, g, a, b, c, d, 1, 0xf61e2562, 5);
        step!($v, m, g, d, a, b, c, 6, 0xc040b340, 9);
        step!($v, m, g, c, d, a, b, 11, 0x265e5a51, 14);
        step!($v, m, g, b, c, d, a, 0, 0xe9b6c7aa, 20);
        step!($v, m, g, a, b, c, d, 5, 0xd62f105d, 5);
        step!($v, m, g, d, a, b, c, 10, 0x02441453, 9);
        step!($v, m, g, c, d, a, b, 15, 0xd8a1e681, 14);
        step!($v, m, g, b, c, d, a, 4, 0xe7d3fbc8, 20);
        step!($v, m, g, a, b, c, d, 9, 0x21e1cde6, 5);
        step!($v, m, g, d, a, b, c, 14, 0xc33707d6, 9);
        step!($v, m, g, c, d, a, b, 3, 0xf4d50d87, 14);
        step!($v, m, g, b, c, d, a, 8, 0x455a14ed, 20);
        step!($v, m, g, a, b, c, d, 13, 0xa9e3e905, 5);
        step!($v, m, g, d, a, b, c, 2, 0xfcefa3f8, 9);
        step!($v, m, g, c, d, a, b, 7, 0x676f02d9, 14);
        step!($v, m, g, b, c, d, a, 12, 0x8d2a4c8a, 20);
        // Round 3: H, message words in the order of RFC 1321.
        step!($v, m, h, a, b, c, d, 5, 0xfffa3942, 4);
        step!($v, m, h, d, a, b, c, 8, 0x8771f681, 11);
        step!($v, m, h, c, d, a, b, 11, 0x6d9d6122, 16);
        step!($v, m, h, b, c, d, a, 14, 0xfde5380c, 23);
        step!($v, m, h, a, b, c, d, 1, 0xa4beea44, 4);
        step!($v, m, h, d, a, b, c, 4, 0x4bdecfa9, 11);
        step!($v, m, h, c, d, a, b, 7, 0xf6bb4b60, 16);
        step!($v, m, h, b, c, d, a, 10, 0xbebfbc70, 23);
        step!($v, m, h, a, b, c, d, 13, 0x289b7ec6, 4);
        step!($v, m, h, d, a, b, c, 0, 0xeaa127fa, 11);
        step!($v, m, h, c, d, a, b, 3, 0xd4ef3085, 16);
        step!($v, m, h, b, c, d, a, 6, 0x04881d05, 23);
        step!($v, m, h, a, b, c, d, 9, 0xd9d4d039, 4);
        step!($v, m, h, d, a, b, c, 12, 0xe6db99e5, 11);
        step!($v, m, h, c, d, a, b, 15, 0x1fa27cf8, 16);
        step!($v, m, h, b, c, d, a, 2, 0xc4ac5665, 23);
        // Round 4: I, message words in the order of RFC 1321.
        step!($v, m, i, a, b, c, d, 0, 0xf4292244, 6);
        step!($v, m, i, d, a, b, c, 7, 0x432aff97, 10);
        step!($v, m, i, c, d, a, b, 14, 0xab9423a7, 15);
        step!($v, m, i, b, c, d, a, 5, 0xfc93a039, 21);
        step!($v, m, i, a, b, c, d, 12, 0x655b59c3, 6);
        step!($v, m, i, d, a, b, c, 3, 0x8f0ccc92, 10);
        step!($v, m, i, c, d, a, b, 10, 0xffeff47d, 15);
        step!($v, m, i, b, c, d, a, 1, 0x85845dd1, 21);
        step!($v, m, i, a, b, c, d, 8, 0x6fa87e4f, 6);
        step!($v, m, i, d, a, b, c, 15, 0xfe2ce6e0, 10);
        step!($v, m, i, c, d, a, b, 6, 0xa3014314, 15);
        step!($v, m, i, b, c, d, a, 13, 0x4e0811a1, 21);
        step!($v, m, i, a, b, c, d, 4, 0xf7537e82, 6);
        step!($v, m, i, d, a, b, c, 11, 0xbd3af235, 10);
        step!($v, m, i, c, d, a, b, 2, 0x2ad7d2bb, 15);
        step!($v, m, i, b, c, d, a, 9, 0xeb86d391, 21);
        [a0.add(a), b0.add(b), c0.add(c), d0.add(d)]
    }};
}

/// Proof that this CPU runs AVX-512F: the only way to reach [`compress16`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Avx512(());

impl Avx512 {
    pub(crate) fn detect() -> Option<Self> {
        std::arch::is_x86_feature_detected!("avx512f").then_some(Self(()))
    }

    /// Runs the block function over every block of 16 lanes; each lane's
    /// slice holds the same whole number of blocks.
    pub(crate) fn compress(self, state: &mut [[u32; 16]; 4], blocks: &[&[u8]; 16]) {
        check_blocks(blocks);
        // SAFETY: `self` exists only if AVX-512F was detected (see `detect`).
        unsafe { compress16(state, blocks) }
    }
}

/// Proof that this CPU runs AVX2: the only way to reach [`compress8`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Avx2(());

impl Avx2 {
    pub(crate) fn detect() -> Option<Self> {
        std::arch::is_x86_feature_detected!("avx2").then_some(Self(()))
    }

    /// As [`Avx512::compress`], with 8 lanes.
    pub(crate) fn compress(self, state: &mut [[u32; 8]; 4], blocks: &[&[u8]; 8]) {
        check_blocks(blocks);
        // SAFETY: `self` exists only if AVX2 was detected (see `detect`).
        unsafe { compress8(state, blocks) }
    }
}

/// The kernels read `blocks[i][at..at + 64]` for every `at` below the
/// first slice's length: each slice must have that same length, a multiple
/// of 64 (slicing checks the bounds again, this makes a mistake plain).
fn check_blocks<const N: usize>(blocks: &[&[u8]; N]) {
    let len = blocks[0].len();
    assert!(
        len.is_multiple_of(64) && blocks.iter().all(|b| b.len() == len),
        "MD5 lanes need the same whole number of blocks in each lane"
    );
}

/// 16 lanes of 32-bit words.
#[derive(Clone, Copy)]
struct V16(__m512i);

impl V16 {
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn splat(x: u32) -> Self {
        Self(_mm512_set1_epi32(x.cast_signed()))
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    fn add(self, other: Self) -> Self {
        Self(_mm512_add_epi32(self.0, other.0))
    }

    /// Rotates left by `L` (`R` = 32 − `L` is for [`V8`]'s shifts).
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn rotl<const L: i32, const R: i32>(self) -> Self {
        Self(_mm512_rol_epi32::<L>(self.0))
    }

    // The boolean functions as `vpternlogd` truth tables over (b, c, d):
    // bit `4b + 2c + d` of the constant is the result for those inputs.

    /// F = (b ∧ c) ∨ (¬b ∧ d), i.e. b ? c : d.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn f(b: Self, c: Self, d: Self) -> Self {
        Self(_mm512_ternarylogic_epi32::<0xca>(b.0, c.0, d.0))
    }

    /// G = (b ∧ d) ∨ (c ∧ ¬d), i.e. d ? b : c.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn g(b: Self, c: Self, d: Self) -> Self {
        Self(_mm512_ternarylogic_epi32::<0xe4>(b.0, c.0, d.0))
    }

    /// H = b ⊕ c ⊕ d.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn h(b: Self, c: Self, d: Self) -> Self {
        Self(_mm512_ternarylogic_epi32::<0x96>(b.0, c.0, d.0))
    }

    /// I = c ⊕ (b ∨ ¬d).
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn i(b: Self, c: Self, d: Self) -> Self {
        Self(_mm512_ternarylogic_epi32::<0x39>(b.0, c.0, d.0))
    }
}

/// 8 lanes of 32-bit words.
#[derive(Clone, Copy)]
struct V8(__m256i);

impl V8 {
    #[inline]
    #[target_feature(enable = "avx2")]
    fn splat(x: u32) -> Self {
        Self(_mm256_set1_epi32(x.cast_signed()))
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    fn add(self, other: Self) -> Self {
        Self(_mm256_add_epi32(self.0, other.0))
    }

    /// Rotates left by `L`; `R` must be 32 − `L`.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn rotl<const L: i32, const R: i32>(self) -> Self {
        Self(_mm256_or_si256(
            _mm256_slli_epi32::<L>(self.0),
            _mm256_srli_epi32::<R>(self.0),
        ))
    }

    /// F = d ⊕ (b ∧ (c ⊕ d)), the same as (b ∧ c) ∨ (¬b ∧ d).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn f(b: Self, c: Self, d: Self) -> Self {
        Self(_mm256_xor_si256(
            d.0,
            _mm256_and_si256(b.0, _mm256_xor_si256(c.0, d.0)),
        ))
    }

    /// G = c ⊕ (d ∧ (b ⊕ c)), the same as (b ∧ d) ∨ (c ∧ ¬d).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn g(b: Self, c: Self, d: Self) -> Self {
        Self(_mm256_xor_si256(
            c.0,
            _mm256_and_si256(d.0, _mm256_xor_si256(b.0, c.0)),
        ))
    }

    /// H = b ⊕ c ⊕ d.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn h(b: Self, c: Self, d: Self) -> Self {
        Self(_mm256_xor_si256(b.0, _mm256_xor_si256(c.0, d.0)))
    }

    /// I = c ⊕ (b ∨ ¬d).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn i(b: Self, c: Self, d: Self) -> Self {
        let not_d = _mm256_xor_si256(d.0, _mm256_set1_epi32(-1));
        Self(_mm256_xor_si256(c.0, _mm256_or_si256(b.0, not_d)))
    }
}

/// The block function over 16 lanes (see [`Avx512::compress`]).
#[target_feature(enable = "avx512f")]
fn compress16(state: &mut [[u32; 16]; 4], blocks: &[&[u8]; 16]) {
    let mut s = [V16::splat(0); 4];
    for (v, words) in s.iter_mut().zip(state.iter()) {
        // SAFETY: `words` is 16 × 4 = 64 bytes, what the unaligned load reads.
        *v = V16(unsafe { _mm512_loadu_si512(words.as_ptr().cast()) });
    }
    let mut at = 0;
    while at < blocks[0].len() {
        let mut rows = [_mm512_setzero_si512(); 16];
        for (row, lane) in rows.iter_mut().zip(blocks) {
            let block = &lane[at..at + 64];
            // SAFETY: `block` is 64 bytes, what the unaligned load reads.
            *row = unsafe { _mm512_loadu_si512(block.as_ptr().cast()) };
        }
        s = md5_block!(V16, s, &transpose16(&rows));
        at += 64;
    }
    for (v, words) in s.iter().zip(state.iter_mut()) {
        // SAFETY: `words` is 64 bytes, what the unaligned store writes.
        unsafe { _mm512_storeu_si512(words.as_mut_ptr().cast(), v.0) };
    }
}

/// Turns 16 rows (lane `i`'s block in row `i`) into 16 columns (word `w`
/// of every lane in column `w`): 32- and 64-bit interleaves within each
/// 128-bit part, then two rounds of 128-bit shuffles.
#[inline]
#[target_feature(enable = "avx512f")]
fn transpose16(r: &[__m512i; 16]) -> [V16; 16] {
    // u[g][k], 128-bit part p: word 4p + k of rows 4g..4g + 4.
    let mut u = [[_mm512_setzero_si512(); 4]; 4];
    for (g, quad) in u.iter_mut().enumerate() {
        let t0 = _mm512_unpacklo_epi32(r[4 * g], r[4 * g + 1]);
        let t1 = _mm512_unpackhi_epi32(r[4 * g], r[4 * g + 1]);
        let t2 = _mm512_unpacklo_epi32(r[4 * g + 2], r[4 * g + 3]);
        let t3 = _mm512_unpackhi_epi32(r[4 * g + 2], r[4 * g + 3]);
        *quad = [
            _mm512_unpacklo_epi64(t0, t2),
            _mm512_unpackhi_epi64(t0, t2),
            _mm512_unpacklo_epi64(t1, t3),
            _mm512_unpackhi_epi64(t1, t3),
        ];
    }
    let mut out = [V16(_mm512_setzero_si512()); 16];
    for k in 0..4 {
        // 0x88 takes parts 0 and 2 of each operand, 0xdd parts 1 and 3.
        let x0 = _mm512_shuffle_i32x4::<0x88>(u[0][k], u[1][k]);
        let x1 = _mm512_shuffle_i32x4::<0xdd>(u[0][k], u[1][k]);
        let y0 = _mm512_shuffle_i32x4::<0x88>(u[2][k], u[3][k]);
        let y1 = _mm512_shuffle_i32x4::<0xdd>(u[2][k], u[3][k]);
        out[k] = V16(_mm512_shuffle_i32x4::<0x88>(x0, y0));
        out[4 + k] = V16(_mm512_shuffle_i32x4::<0x88>(x1, y1));
        out[8 + k] = V16(_mm512_shuffle_i32x4::<0xdd>(x0, y0));
        out[12 + k] = V16(_mm512_shuffle_i32x4::<0xdd>(x1, y1));
    }
    out
}

/// The block function over 8 lanes (see [`Avx2::compress`]).
#[target_feature(enable = "avx2")]
fn compress8(state: &mut [[u32; 8]; 4], blocks: &[&[u8]; 8]) {
    let mut s = [V8::splat(0); 4];
    for (v, words) in s.iter_mut().zip(state.iter()) {
        // SAFETY: `words` is 8 × 4 = 32 bytes, what the unaligned load reads.
        *v = V8(unsafe { _mm256_loadu_si256(words.as_ptr().cast()) });
    }
    let mut at = 0;
    while at < blocks[0].len() {
        let mut low = [_mm256_setzero_si256(); 8];
        let mut high = [_mm256_setzero_si256(); 8];
        for ((lo, hi), lane) in low.iter_mut().zip(high.iter_mut()).zip(blocks) {
            let block = &lane[at..at + 64];
            // SAFETY: `block` is 64 bytes; each load reads 32 of them.
            unsafe {
                *lo = _mm256_loadu_si256(block.as_ptr().cast());
                *hi = _mm256_loadu_si256(block[32..].as_ptr().cast());
            }
        }
        let (w0, w8) = (transpose8(&low), transpose8(&high));
        let m = [
            w0[0], w0[1], w0[2], w0[3], w0[4], w0[5], w0[6], w0[7], w8[0], w8[1], w8[2], w8[3],
            w8[4], w8[5], w8[6], w8[7],
        ];
        s = md5_block!(V8, s, &m);
        at += 64;
    }
    for (v, words) in s.iter().zip(state.iter_mut()) {
        // SAFETY: `words` is 32 bytes, what the unaligned store writes.
        unsafe { _mm256_storeu_si256(words.as_mut_ptr().cast(), v.0) };
    }
}

/// Turns 8 rows of 8 words into 8 columns: 32- and 64-bit interleaves
/// within each 128-bit half, then the halves swapped across.
#[inline]
#[target_feature(enable = "avx2")]
fn transpose8(r: &[__m256i; 8]) -> [V8; 8] {
    // u[g][k], half h: word 4h + k of rows 4g..4g + 4.
    let mut u = [[_mm256_setzero_si256(); 4]; 2];
    for (g, quad) in u.iter_mut().enumerate() {
        let t0 = _mm256_unpacklo_epi32(r[4 * g], r[4 * g + 1]);
        let t1 = _mm256_unpackhi_epi32(r[4 * g], r[4 * g + 1]);
        let t2 = _mm256_unpacklo_epi32(r[4 * g + 2], r[4 * g + 3]);
        let t3 = _mm256_unpackhi_epi32(r[4 * g + 2], r[4 * g + 3]);
        *quad = [
            _mm256_unpacklo_epi64(t0, t2),
            _mm256_unpackhi_epi64(t0, t2),
            _mm256_unpacklo_epi64(t1, t3),
            _mm256_unpackhi_epi64(t1, t3),
        ];
    }
    let mut out = [V8(_mm256_setzero_si256()); 8];
    for k in 0..4 {
        // 0x20: the low halves of both operands, 0x31: the high halves.
        out[k] = V8(_mm256_permute2x128_si256::<0x20>(u[0][k], u[1][k]));
        out[4 + k] = V8(_mm256_permute2x128_si256::<0x31>(u[0][k], u[1][k]));
    }
    out
}
