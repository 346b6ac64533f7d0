//! FxHash, the multiply-rotate hash of rustc and Firefox: several times faster than SipHash on
//! the short keys used here (property names, enum values). It is not collision resistant;
//! every table using it is built from trusted schema data or bounded in size, so a hostile
//! peer can at worst slow a lookup to a comparison per colliding entry.

use std::hash::{BuildHasherDefault, Hasher};

/// FxHash's multiplier (rustc-hash).
const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

/// Hasher state; see the module docs.
#[derive(Clone, Copy, Default)]
pub struct FxHasher(u64);

/// `BuildHasher` for `HashMap`/`HashSet` with [`FxHasher`].
pub type FxBuildHasher = BuildHasherDefault<FxHasher>;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            if let Some(dst) = word.get_mut(..rest.len()) {
                dst.copy_from_slice(rest);
            }
            self.add(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}
