//! Pure-Rust RSASSA-PKCS1-v1_5 SHA-256 verification: `s^e mod n` by square-and-multiply in
//! Montgomery form, compared with the expected encoding in the same form.
//!
//! Input: a prepared public key and an untrusted signature and digest. Output: accept or
//! [`Error::InvalidSignature`]. Everything here is public data, so variable time is fine; for
//! e = 65537 a verification is 16 squarings, 1 multiplication and a short one by the digest.
//!
//! Per key, once: the modulus goes into a fixed number of 64-bit limbs (16, 32, 48, 64 or 128:
//! the smallest that holds it, so RSA-2048 is exactly 32) with its Montgomery constant, and
//! the constants below are computed with crypto-bigint. Per verification, [`arith`] works on
//! stack arrays of that size: no heap, and loop bounds the compiler knows.
//!
//! No conversion into or out of the Montgomery domain: the signature `s` is used as the
//! internal value of a Montgomery element as it is (standing for `s·R^-1`), so the
//! exponentiation yields `s^e·R^(1-e) mod n`. Instead of multiplying that by `R^(e-1)`, the
//! expected encoded message `EM` is brought to `EM·R^(1-e)`: `EM` is a per-key constant
//! except for its last 32 bytes, the digest `D`, so this is a precomputed `EM₀·R^(1-e)` plus
//! `D·R^(1-e)`, a multiplication by 4 limbs. Both sides are reduced below `n`, and `EM < n`
//! (its first byte is zero), so they are equal exactly when `s^e mod n = EM`.

pub(crate) mod arith;

use crypto_bigint::modular::{BoxedMontyForm, BoxedMontyParams};
use crypto_bigint::{BoxedUint, MontyForm, MontyMultiplier, Odd, Resize as _};

use self::arith::{Modulus, from_be_bytes, less_than};
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

/// `2^256`, big-endian: a factor of the digest constant, so that it cancels the division by
/// `2^256` in [`Modulus::mul_short`] by the digest's 4 limbs.
const TWO_POW_256: [u8; 33] = {
    let mut bytes = [0; 33];
    bytes[0] = 1;
    bytes
};

/// An RSA public key prepared for Montgomery exponentiation.
#[derive(Clone, Debug)]
pub(crate) struct MontgomeryKey {
    /// The modulus and its constants, at the key's limb count; `None` when the modulus is too
    /// short for a SHA-256 encoding, so that every signature is rejected (RFC 8017 §9.2 step 3,
    /// "intended encoded message length too short").
    width: Option<Width>,
    /// The public exponent, odd and at least 3.
    e: u64,
    /// The modulus length in bytes (`k` in RFC 8017).
    k: usize,
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

/// The modulus in `L` limbs and the expected encoding's constants for `R = 2^(64·L)`.
#[derive(Clone, Debug)]
struct Prepared<const L: usize> {
    modulus: Modulus<L>,
    /// `EM₀·R^(1-e) mod n`, for `EM₀` the expected encoding with the digest bytes zero.
    em_zero: [u64; L],
    /// `2^256·R^(1-e) mod n`: [`Modulus::mul_short`] of the digest by it, which divides by
    /// `2^256`, is `D·R^(1-e) mod n`.
    digest_factor: [u64; L],
}

impl<const L: usize> Prepared<L> {
    /// `None` if `n` needs more than `L` limbs; `em_zero` is the `k`-byte encoding with the
    /// digest bytes zero (below `n`, as is `2^256`).
    fn new(n: &Odd<BoxedUint>, e: &BoxedUint, e_bits: u32, em_zero: &[u8]) -> Option<Self> {
        let (modulus, params) = modulus_and_params(n)?;
        let scale = r_pow_one_minus_e(&params, e, e_bits);
        let scaled = |big_endian: &[u8]| {
            let x = BoxedUint::from_be_slice(big_endian, params.bits_precision()).ok()?;
            limbs(&(BoxedMontyForm::new(x, &params) * &scale).retrieve())
        };
        Some(Self {
            modulus,
            em_zero: scaled(em_zero)?,
            digest_factor: scaled(&TWO_POW_256)?,
        })
    }

    /// Whether `s^e mod n` equals the encoding of `digest`, for the big-endian `signature`;
    /// false if `signature` is not below `n`.
    fn verifies(&self, signature: &[u8], e: u64, digest: &[u8; SHA256_LEN]) -> bool {
        let Some(s) = from_be_bytes::<L>(signature) else {
            return false;
        };
        // RSAVP1 step 1: the representative must be below the modulus.
        if !less_than(&s, self.modulus.limbs()) {
            return false;
        }
        let Some(d) = from_be_bytes::<4>(digest) else {
            return false;
        };
        let em = self.modulus.add(
            &self.em_zero,
            &self.modulus.mul_short(&d, &self.digest_factor),
        );
        self.power(&s, e) == em
    }

    /// `s^e·R^(1-e) mod n`, for `s < n`. Internal value `s`, standing for `s·R^-1`; after
    /// exponent bits `j` the accumulator holds `s^j·R^(1-j)` (squaring and multiplying each
    /// divide by R once).
    fn power(&self, s: &[u64; L], e: u64) -> [u64; L] {
        let mut acc = *s;
        let e_bits = u64::BITS - e.leading_zeros();
        for i in (0..e_bits.saturating_sub(1)).rev() {
            acc = self.modulus.square(&acc);
            if (e >> i) & 1 == 1 {
                acc = self.modulus.mul(&acc, s);
            }
        }
        acc
    }
}

/// `n` as a [`Modulus`] of `L` limbs, with crypto-bigint's parameters for the same
/// `R = 2^(64·L)` to compute per-key constants with; `None` if `n` needs more than `L` limbs.
pub(crate) fn modulus_and_params<const L: usize>(
    n: &Odd<BoxedUint>,
) -> Option<(Modulus<L>, BoxedMontyParams)> {
    let bits = 64 * u32::try_from(L).ok()?;
    let modulus = Modulus::new(limbs(n)?)?;
    let params = BoxedMontyParams::new_vartime(n.try_resize(bits)?);
    (params.bits_precision() == bits).then_some((modulus, params))
}

/// The `L` limbs of a crypto-bigint integer; `None` if it needs more.
pub(crate) fn limbs<const L: usize>(x: &BoxedUint) -> Option<[u64; L]> {
    from_be_bytes(&x.to_be_bytes())
}

/// `R^(1-e) mod n` for the `R` of `params`, computed once per key.
fn r_pow_one_minus_e(params: &BoxedMontyParams, e: &BoxedUint, e_bits: u32) -> BoxedMontyForm {
    // The form with internal value 1 stands for R^-1; raised to e and multiplied by the form of
    // R (whose internal value is R² mod n, and `one`'s is R mod n), it is R^(1-e).
    let bits = params.bits_precision();
    let r_inv = BoxedMontyForm::from_montgomery(BoxedUint::one_with_precision(bits), params);
    let r = BoxedMontyForm::new(BoxedMontyForm::one(params).to_montgomery(), params);
    let mut mm = <BoxedMontyForm as MontyForm>::Multiplier::from(params);
    let mut acc = r_inv.clone();
    for i in (0..e_bits.saturating_sub(1)).rev() {
        mm.square_assign(&mut acc);
        if e.bit_vartime(i) {
            mm.mul_assign(&mut acc, &r_inv);
        }
    }
    acc * &r
}

impl Width {
    /// The smallest supported width that holds `n`.
    fn new(n: &Odd<BoxedUint>, e: &BoxedUint, e_bits: u32, em_zero: &[u8]) -> Option<Self> {
        let limbs = n.bit_width_vartime().div_ceil(64);
        match limbs {
            0..=16 => Prepared::new(n, e, e_bits, em_zero).map(|p| Self::L16(Box::new(p))),
            17..=32 => Prepared::new(n, e, e_bits, em_zero).map(|p| Self::L32(Box::new(p))),
            33..=48 => Prepared::new(n, e, e_bits, em_zero).map(|p| Self::L48(Box::new(p))),
            49..=64 => Prepared::new(n, e, e_bits, em_zero).map(|p| Self::L64(Box::new(p))),
            65..=128 => Prepared::new(n, e, e_bits, em_zero).map(|p| Self::L128(Box::new(p))),
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
        let width = encoded_message(k, &[0; SHA256_LEN])
            .map(|em_zero| {
                Width::new(n, e, e_bits, &em_zero).ok_or(ConfigError::BadCertificate {
                    reason: "RSA modulus larger than 8192 bits",
                })
            })
            .transpose()?;
        Ok(Self {
            width,
            e: e_small,
            k,
        })
    }
}

impl RsaBackend for MontgomeryKey {
    fn verify_sha256_digest(&self, digest: &[u8; 32], signature: &[u8]) -> Result<(), Error> {
        // RFC 8017 §8.2.2 step 1: the signature has exactly the modulus length.
        if signature.len() != self.k {
            return Err(Error::InvalidSignature);
        }
        let Some(width) = &self.width else {
            return Err(Error::InvalidSignature);
        };
        let e = self.e;
        if with_prepared!(width, key => key.verifies(signature, e, digest)) {
            Ok(())
        } else {
            Err(Error::InvalidSignature)
        }
    }
}

/// `EM = 00 01 PS 00 || DigestInfo` for a `k`-byte modulus and a SHA-256 `digest` (RFC 8017
/// §9.2); `None` if `k` leaves fewer than 8 bytes of padding.
fn encoded_message(k: usize, digest: &[u8; SHA256_LEN]) -> Option<Vec<u8>> {
    let t_len = SHA256_DIGEST_INFO_PREFIX.len() + SHA256_LEN;
    let ps_len = k.checked_sub(t_len + 3)?;
    if ps_len < MIN_PS_LEN {
        return None;
    }
    let mut out = Vec::with_capacity(k);
    out.extend_from_slice(&[0x00, 0x01]);
    out.resize(2 + ps_len, 0xff);
    out.push(0x00);
    out.extend_from_slice(&SHA256_DIGEST_INFO_PREFIX);
    out.extend_from_slice(digest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_message_layout() {
        let em = encoded_message(256, &[0xab; 32]).unwrap();
        assert_eq!(em.len(), 256);
        assert_eq!(&em[..2], &[0x00, 0x01]);
        assert!(em[2..256 - 32 - 20].iter().all(|&b| b == 0xff));
        assert_eq!(em[256 - 32 - 20], 0x00);
        assert_eq!(&em[256 - 32 - 19..256 - 32], &SHA256_DIGEST_INFO_PREFIX);
        assert_eq!(&em[256 - 32..], &[0xab; 32]);
    }

    #[test]
    fn encoded_message_too_short() {
        // tLen = 51; k must be at least tLen + 11 = 62.
        assert!(encoded_message(61, &[0; 32]).is_none());
        assert_eq!(encoded_message(62, &[0; 32]).unwrap().len(), 62);
        assert!(encoded_message(0, &[0; 32]).is_none());
    }

    fn odd(n: u64) -> Odd<BoxedUint> {
        Odd::new(BoxedUint::from(n)).unwrap()
    }

    fn params_at(n: u64, bits: u32) -> BoxedMontyParams {
        BoxedMontyParams::new_vartime(odd(n).try_resize(bits).unwrap())
    }

    /// `base^exp mod n`, the slow way.
    fn pow_mod(base: u64, exp: u64, n: u64) -> u64 {
        (0..exp).fold(1, |acc, _| {
            u64::try_from(u128::from(acc) * u128::from(base) % u128::from(n)).unwrap()
        })
    }

    #[test]
    fn r_pow_one_minus_e_inverts_r_pow_e_minus_1() {
        for (n, e, bits) in [
            (3233, 17_u64, 1024),
            (0xffff_fff1, 65537, 2048),
            (3233, 3, 4096),
        ] {
            let params = params_at(n, bits);
            let r = BoxedMontyForm::new(BoxedMontyForm::one(&params).to_montgomery(), &params);
            let e_big = BoxedUint::from(e);
            let scale = r_pow_one_minus_e(&params, &e_big, e_big.bit_width_vartime());
            let product = scale * r.pow(&BoxedUint::from(e - 1));
            assert_eq!(
                product.retrieve(),
                BoxedUint::one_with_precision(bits),
                "{n}, {e}"
            );
        }
    }

    /// `power` at each width, for the same small modulus: `R` differs, so the result is
    /// checked as `s^e·R^(1-e)`, with `R^(1-e)` from crypto-bigint.
    fn power_at<const L: usize>(n: u64, s: u64, e: u64) {
        let bits = 64 * u32::try_from(L).unwrap();
        let key = Prepared::<L> {
            modulus: Modulus::new(from_be_bytes(&n.to_be_bytes()).unwrap()).unwrap(),
            em_zero: [0; L],
            digest_factor: [0; L],
        };
        let s_limbs = from_be_bytes::<L>(&s.to_be_bytes()).unwrap();
        let params = params_at(n, bits);
        let e_big = BoxedUint::from(e);
        let plain = BoxedUint::from(pow_mod(s, e, n)).try_resize(bits).unwrap();
        let expected = BoxedMontyForm::new(plain, &params)
            * r_pow_one_minus_e(&params, &e_big, e_big.bit_width_vartime());
        let expected = from_be_bytes::<L>(&expected.retrieve().to_be_bytes()).unwrap();
        assert_eq!(
            key.power(&s_limbs, e),
            expected,
            "{n}: {s}^{e} at {L} limbs"
        );
    }

    #[test]
    fn power_at_every_width() {
        for (n, s, e) in [
            (3233, 65, 17),
            (3233, 100, 3),
            (0xffff_fff1, 0x1234_5678, 65537),
        ] {
            power_at::<16>(n, s, e);
            power_at::<32>(n, s, e);
            power_at::<48>(n, s, e);
            power_at::<64>(n, s, e);
            power_at::<128>(n, s, e);
        }
    }

    #[test]
    fn widths_follow_the_modulus() {
        let e = BoxedUint::from(65537_u32);
        let width = |bits: u32| {
            let n = BoxedUint::one_with_precision(bits)
                .shl_vartime(bits - 1)
                .unwrap();
            let n = Odd::new(n.wrapping_add(BoxedUint::one())).unwrap();
            let key = MontgomeryKey::new(&n, &e, usize::try_from(bits / 8).unwrap()).unwrap();
            match key.width {
                Some(Width::L16(_)) => 16,
                Some(Width::L32(_)) => 32,
                Some(Width::L48(_)) => 48,
                Some(Width::L64(_)) => 64,
                Some(Width::L128(_)) => 128,
                None => 0,
            }
        };
        assert_eq!(width(1024), 16);
        assert_eq!(width(2048), 32);
        assert_eq!(width(3072), 48);
        assert_eq!(width(4096), 64);
        assert_eq!(width(8192), 128);
        // Too short for a SHA-256 encoding: every signature is refused.
        assert_eq!(width(256), 0);
    }

    #[test]
    fn refuses_what_it_cannot_verify() {
        let key = MontgomeryKey::new(&odd(3233), &BoxedUint::from(17_u32), 2).unwrap();
        assert_eq!(
            key.verify_sha256_digest(&[0; 32], &[0, 65]),
            Err(Error::InvalidSignature)
        );
        for e in [0_u32, 1, 2, 65536] {
            assert!(MontgomeryKey::new(&odd(3233), &BoxedUint::from(e), 2).is_err());
        }
        let n = BoxedUint::one_with_precision(8256)
            .shl_vartime(8255)
            .unwrap();
        let n = Odd::new(n.wrapping_add(BoxedUint::one())).unwrap();
        assert!(MontgomeryKey::new(&n, &BoxedUint::from(3_u32), 1032).is_err());
    }
}
