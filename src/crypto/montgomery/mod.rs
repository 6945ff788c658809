//! Pure-Rust RSASSA-PKCS1-v1_5 SHA-256 verification: `s^e mod n` by square-and-multiply in
//! Montgomery form, then a byte-for-byte comparison with the expected encoding.
//!
//! Input: a prepared public key and an untrusted signature and digest. Output: accept or
//! [`Error::InvalidSignature`]. Everything here is public data, so variable time is fine; for
//! e = 65537 a verification is 16 squarings and 2 multiplications.
//!
//! Per key, once: the modulus goes into a fixed number of 64-bit limbs (16, 32, 48, 64 or 128:
//! the smallest that holds it, so RSA-2048 is exactly 32) with its Montgomery constant, and
//! `R^e mod n` is computed with crypto-bigint. Per verification, [`arith`] works on stack
//! arrays of that size: no heap, and loop bounds the compiler knows.
//!
//! No conversion into or out of the Montgomery domain: the signature `s` is used as the
//! internal value of a Montgomery element as it is (standing for `s·R^-1`), so the
//! exponentiation yields the internal value `s^e·R^(1-e)`, and one multiplication by the
//! precomputed `R^e mod n` turns that into the plain `s^e mod n`: one multiplication instead
//! of two.

pub(crate) mod arith;

use crypto_bigint::modular::{BoxedMontyForm, BoxedMontyParams};
use crypto_bigint::{BoxedUint, MontyForm, MontyMultiplier, Odd, Resize as _};

use self::arith::{Modulus, be_bytes, from_be_bytes, less_than};
use crate::crypto::backend::RsaBackend;
use crate::error::{ConfigError, Error};

/// DER of `DigestInfo` for SHA-256 up to (excluding) the 32 digest bytes (RFC 8017 §9.2,
/// note 1): `SEQUENCE { SEQUENCE { OID 2.16.840.1.101.3.4.2.1, NULL }, OCTET STRING (32) }`.
const SHA256_DIGEST_INFO_PREFIX: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

/// Length of a SHA-256 digest.
const SHA256_LEN: usize = 32;

/// Minimum padding string length (RFC 8017 §9.2 step 3: at least 8 bytes of 0xFF).
const MIN_PS_LEN: usize = 8;

/// An RSA public key prepared for Montgomery exponentiation.
#[derive(Clone, Debug)]
pub(crate) struct MontgomeryKey {
    /// The modulus and its constants, at the key's limb count.
    width: Width,
    /// The public exponent, odd and at least 3.
    e: u64,
    /// The modulus length in bytes (`k` in RFC 8017).
    k: usize,
    /// `EM` without its last 32 bytes: `00 01 FF..FF 00 || DigestInfo prefix`, `k - 32`
    /// bytes; `None` when the modulus is too short for a SHA-256 encoding, so that every
    /// signature is rejected (RFC 8017 §9.2 step 3, "intended encoded message length too
    /// short").
    em_prefix: Option<Box<[u8]>>,
}

/// A key's constants at one of the supported limb counts (boxed: the large ones would make
/// every key as big as an 8192-bit one).
#[derive(Clone, Debug)]
enum Width {
    L16(Box<Prepared<16>>),
    L32(Box<Prepared<32>>),
    L48(Box<Prepared<48>>),
    L64(Box<Prepared<64>>),
    L128(Box<Prepared<128>>),
}

/// Runs `$body` with `$key` bound to the `Prepared<L>` of whichever width `$width` holds.
macro_rules! with_prepared {
    ($width:expr, $key:ident => $body:expr) => {
        match $width {
            Width::L16($key) => $body,
            Width::L32($key) => $body,
            Width::L48($key) => $body,
            Width::L64($key) => $body,
            Width::L128($key) => $body,
        }
    };
}

/// The modulus in `L` limbs and `R^e mod n` for `R = 2^(64·L)`.
#[derive(Clone, Debug)]
struct Prepared<const L: usize> {
    modulus: Modulus<L>,
    /// An internal value `R^e mod n`: multiplying the exponentiation's internal value
    /// `s^e·R^(1-e)` by it yields the plain `s^e mod n`.
    r_pow_e: [u64; L],
}

impl<const L: usize> Prepared<L> {
    /// `None` if `n` needs more than `L` limbs.
    fn new(n: &Odd<BoxedUint>, e: &BoxedUint, e_bits: u32) -> Option<Self> {
        let bits = 64 * u32::try_from(L).ok()?;
        let modulus = Modulus::new(from_be_bytes(&n.to_be_bytes())?)?;
        let params = BoxedMontyParams::new_vartime(n.try_resize(bits)?);
        if params.bits_precision() != bits {
            return None;
        }
        Some(Self {
            modulus,
            r_pow_e: from_be_bytes(&r_pow_e(&params, e, e_bits).to_be_bytes())?,
        })
    }

    /// Whether the `k` big-endian bytes of `s^e mod n` equal `expected`, for the big-endian
    /// `signature`; false if `signature` is not below `n`.
    fn recovers(
        &self,
        signature: &[u8],
        e: u64,
        k: usize,
        expected: impl Iterator<Item = u8>,
    ) -> bool {
        // I2OSP(m, k): the limbs' big-endian form has `8·L - k` leading bytes, all zero.
        let Some(pad) = (8 * L).checked_sub(k) else {
            return false;
        };
        let Some(s) = from_be_bytes::<L>(signature) else {
            return false;
        };
        // RSAVP1 step 1: the representative must be below the modulus.
        if !less_than(&s, self.modulus.limbs()) {
            return false;
        }
        let m = self.public_op(&s, e);
        let mut bytes = be_bytes(&m);
        bytes.by_ref().take(pad).all(|b| b == 0) && bytes.eq(expected)
    }

    /// `s^e mod n` as a plain residue, for `s < n`. Internal value `s`, standing for
    /// `s·R^-1`; after exponent bits `j` the accumulator holds `s^j·R^(1-j)` (squaring and
    /// multiplying each divide by R once).
    fn public_op(&self, s: &[u64; L], e: u64) -> [u64; L] {
        let mut acc = *s;
        let e_bits = u64::BITS - e.leading_zeros();
        for i in (0..e_bits.saturating_sub(1)).rev() {
            acc = self.modulus.square(&acc);
            if (e >> i) & 1 == 1 {
                acc = self.modulus.mul(&acc, s);
            }
        }
        self.modulus.mul(&acc, &self.r_pow_e)
    }
}

/// `R^e mod n` for the `R` of `params`, computed once per key.
fn r_pow_e(params: &BoxedMontyParams, e: &BoxedUint, e_bits: u32) -> BoxedUint {
    // `one`'s internal value is R mod n. Raising its Montgomery form to e gives R^e mod n
    // as a plain residue.
    let r_mod_n = BoxedMontyForm::one(params).to_montgomery();
    let mut mm = <BoxedMontyForm as MontyForm>::Multiplier::from(params);
    let base = BoxedMontyForm::new(r_mod_n, params);
    let mut acc = base.clone();
    for i in (0..e_bits.saturating_sub(1)).rev() {
        mm.square_assign(&mut acc);
        if e.bit_vartime(i) {
            mm.mul_assign(&mut acc, &base);
        }
    }
    acc.retrieve()
}

impl Width {
    /// The smallest supported width that holds `n`.
    fn new(n: &Odd<BoxedUint>, e: &BoxedUint, e_bits: u32) -> Option<Self> {
        let limbs = n.bit_width_vartime().div_ceil(64);
        match limbs {
            0..=16 => Prepared::new(n, e, e_bits).map(|p| Self::L16(Box::new(p))),
            17..=32 => Prepared::new(n, e, e_bits).map(|p| Self::L32(Box::new(p))),
            33..=48 => Prepared::new(n, e, e_bits).map(|p| Self::L48(Box::new(p))),
            49..=64 => Prepared::new(n, e, e_bits).map(|p| Self::L64(Box::new(p))),
            65..=128 => Prepared::new(n, e, e_bits).map(|p| Self::L128(Box::new(p))),
            _ => None,
        }
    }
}

impl MontgomeryKey {
    /// Prepares the key: modulus `n` (odd), exponent `e`, modulus length `k` in bytes.
    pub(crate) fn new(n: &Odd<BoxedUint>, e: &BoxedUint, k: usize) -> Result<Self, ConfigError> {
        let e_bits = e.bit_width_vartime();
        let e_small = from_be_bytes::<1>(&e.to_be_bytes()).map(|[limb]| limb);
        let Some(e_small) = e_small.filter(|_| e_bits >= 2 && e.bit_vartime(0)) else {
            return Err(ConfigError::BadCertificate {
                reason: "RSA public exponent is not an odd number from 3 to 2^64 - 1",
            });
        };
        let width = Width::new(n, e, e_bits).ok_or(ConfigError::BadCertificate {
            reason: "RSA modulus larger than 8192 bits",
        })?;
        Ok(Self {
            width,
            e: e_small,
            k,
            em_prefix: em_prefix(k),
        })
    }

    /// Whether `s^e mod n` for the big-endian `signature`, as `k` bytes, equals `expected`.
    fn recovers(&self, signature: &[u8], expected: impl Iterator<Item = u8>) -> bool {
        let (e, k) = (self.e, self.k);
        with_prepared!(&self.width, key => key.recovers(signature, e, k, expected))
    }
}

impl RsaBackend for MontgomeryKey {
    fn verify_sha256_digest(&self, digest: &[u8; 32], signature: &[u8]) -> Result<(), Error> {
        // RFC 8017 §8.2.2 step 1: the signature has exactly the modulus length.
        if signature.len() != self.k {
            return Err(Error::InvalidSignature);
        }
        let Some(em_prefix) = &self.em_prefix else {
            return Err(Error::InvalidSignature);
        };
        let expected = em_prefix.iter().chain(digest).copied();
        if self.recovers(signature, expected) {
            Ok(())
        } else {
            Err(Error::InvalidSignature)
        }
    }
}

/// Builds `00 01 PS 00 || DigestInfo prefix` for a `k`-byte modulus: the expected encoded
/// message (RFC 8017 §9.2) without the digest.
fn em_prefix(k: usize) -> Option<Box<[u8]>> {
    let t_len = SHA256_DIGEST_INFO_PREFIX.len() + SHA256_LEN;
    let ps_len = k.checked_sub(t_len + 3)?;
    if ps_len < MIN_PS_LEN {
        return None;
    }
    let mut out = Vec::with_capacity(k - SHA256_LEN);
    out.extend_from_slice(&[0x00, 0x01]);
    out.resize(2 + ps_len, 0xff);
    out.push(0x00);
    out.extend_from_slice(&SHA256_DIGEST_INFO_PREFIX);
    Some(out.into_boxed_slice())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn em_prefix_layout() {
        let p = em_prefix(256).unwrap();
        assert_eq!(p.len(), 256 - 32);
        assert_eq!(&p[..2], &[0x00, 0x01]);
        assert!(p[2..256 - 32 - 20].iter().all(|&b| b == 0xff));
        assert_eq!(p[256 - 32 - 20], 0x00);
        assert_eq!(&p[256 - 32 - 19..], &SHA256_DIGEST_INFO_PREFIX);
    }

    #[test]
    fn em_prefix_too_short() {
        // tLen = 51; k must be at least tLen + 11 = 62.
        assert!(em_prefix(61).is_none());
        assert_eq!(em_prefix(62).unwrap().len(), 30);
        assert!(em_prefix(0).is_none());
    }

    fn odd(n: u32) -> Odd<BoxedUint> {
        Odd::new(BoxedUint::from(n)).unwrap()
    }

    #[test]
    fn tiny_modulus_arithmetic() {
        // n = 3233 = 61 * 53: 65^17 mod 3233 = 2790 (the textbook example), and with e = 3,
        // 100^3 mod 3233.
        let key = MontgomeryKey::new(&odd(3233), &BoxedUint::from(17_u32), 2).unwrap();
        assert!(key.recovers(&[0, 65], 2790_u16.to_be_bytes().into_iter()));
        assert!(!key.recovers(&[0, 65], 2791_u16.to_be_bytes().into_iter()));
        let key = MontgomeryKey::new(&odd(3233), &BoxedUint::from(3_u32), 2).unwrap();
        let cube = u16::try_from(1_000_000_u32 % 3233).unwrap();
        assert!(key.recovers(&[0, 100], cube.to_be_bytes().into_iter()));
        // s = n and s > n are not representatives.
        assert!(!key.recovers(&3233_u16.to_be_bytes(), [0, 0].into_iter()));
        assert!(!key.recovers(&3234_u16.to_be_bytes(), 1_u16.to_be_bytes().into_iter()));
    }

    #[test]
    fn every_width_computes_the_same_power() {
        // The same small modulus at each width: R differs, s^e mod n does not.
        let n = odd(0xffff_fff1);
        let e = BoxedUint::from(65537_u32);
        let expected = {
            let (s, n) = (0x1234_5678_u64, 0xffff_fff1_u64);
            let mut r = 1_u64;
            for _ in 0..65537 {
                r = r * s % n;
            }
            r
        };
        let check = |width: Width| {
            let key = MontgomeryKey {
                width,
                e: 65537,
                k: 4,
                em_prefix: None,
            };
            let expected = u32::try_from(expected).unwrap().to_be_bytes();
            assert!(key.recovers(&0x1234_5678_u32.to_be_bytes(), expected.into_iter()));
        };
        let e_bits = e.bit_width_vartime();
        check(Width::L16(Box::new(Prepared::new(&n, &e, e_bits).unwrap())));
        check(Width::L32(Box::new(Prepared::new(&n, &e, e_bits).unwrap())));
        check(Width::L48(Box::new(Prepared::new(&n, &e, e_bits).unwrap())));
        check(Width::L64(Box::new(Prepared::new(&n, &e, e_bits).unwrap())));
        check(Width::L128(Box::new(
            Prepared::new(&n, &e, e_bits).unwrap(),
        )));
    }

    #[test]
    fn rejects_even_or_tiny_exponent() {
        for e in [0_u32, 1, 2, 65536] {
            assert!(MontgomeryKey::new(&odd(3233), &BoxedUint::from(e), 2).is_err());
        }
    }
}
