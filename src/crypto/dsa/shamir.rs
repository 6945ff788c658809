//! `g^u1 · y^u2 mod p`, the exponentiation in DSA verification, on the fixed-size Montgomery
//! arithmetic that RSA uses ([`crate::crypto::montgomery::arith`]).
//!
//! One simultaneous exponentiation (Shamir's trick): one squaring per bit of the longer
//! exponent and one multiplication by `g`, `y` or the precomputed `g·y` per bit set in either,
//! variable-time on public data. The bases are prepared once per key, at the width of `p`:
//! 16, 32 or 48 limbs for DSA's 1024, 2048 and 3072 bits.

use crypto_bigint::modular::BoxedMontyForm;
use crypto_bigint::{BoxedUint, Odd, Resize as _};

use crate::crypto::montgomery::arith::{Modulus, be_bytes};
use crate::crypto::montgomery::{limbs, modulus_and_params};

/// `g`, `y` and `g·y` modulo `p`, at the smallest width that holds `p` (boxed: a 3072-bit
/// key's bases would make every key that large).
#[derive(Clone, Debug)]
pub(super) enum Bases {
    L16(Box<FixedBases<16>>),
    L32(Box<FixedBases<32>>),
    L48(Box<FixedBases<48>>),
}

impl Bases {
    /// `None` if `p` has more than 3072 bits, or `g` or `y` is not below `p`.
    pub(super) fn new(p: &Odd<BoxedUint>, g: &BoxedUint, y: &BoxedUint) -> Option<Self> {
        match p.bit_width_vartime().div_ceil(64) {
            0..=16 => FixedBases::new(p, g, y).map(|b| Self::L16(Box::new(b))),
            17..=32 => FixedBases::new(p, g, y).map(|b| Self::L32(Box::new(b))),
            33..=48 => FixedBases::new(p, g, y).map(|b| Self::L48(Box::new(b))),
            _ => None,
        }
    }

    /// `g^u1 · y^u2 mod p`.
    pub(super) fn g_u1_y_u2(&self, u1: &BoxedUint, u2: &BoxedUint) -> BoxedUint {
        match self {
            Self::L16(bases) => bases.g_u1_y_u2(u1, u2),
            Self::L32(bases) => bases.g_u1_y_u2(u1, u2),
            Self::L48(bases) => bases.g_u1_y_u2(u1, u2),
        }
    }
}

/// The bases as Montgomery internal values (`x·R mod p` for `R = 2^(64·L)`).
#[derive(Clone, Debug)]
pub(super) struct FixedBases<const L: usize> {
    modulus: Modulus<L>,
    /// `R mod p`: 1, where the exponentiation starts.
    one: [u64; L],
    g: [u64; L],
    y: [u64; L],
    gy: [u64; L],
}

impl<const L: usize> FixedBases<L> {
    /// `None` if `p` needs more than `L` limbs, or `g` or `y` is not below `p`.
    fn new(p: &Odd<BoxedUint>, g: &BoxedUint, y: &BoxedUint) -> Option<Self> {
        if g >= p.as_ref() || y >= p.as_ref() {
            return None;
        }
        let (modulus, params) = modulus_and_params(p)?;
        let internal = |x: &BoxedUint| {
            let x = x.clone().try_resize(params.bits_precision())?;
            limbs(&BoxedMontyForm::new(x, &params).to_montgomery())
        };
        let (g, y) = (internal(g)?, internal(y)?);
        Some(Self {
            one: limbs(&BoxedMontyForm::one(&params).to_montgomery())?,
            gy: modulus.mul(&g, &y),
            modulus,
            g,
            y,
        })
    }

    /// `g^u1 · y^u2 mod p`, left to right over the bits of both exponents at once.
    fn g_u1_y_u2(&self, u1: &BoxedUint, u2: &BoxedUint) -> BoxedUint {
        let mut acc = self.one;
        for i in (0..u1.bit_width_vartime().max(u2.bit_width_vartime())).rev() {
            acc = self.modulus.square(&acc);
            let factor = match (u1.bit_vartime(i), u2.bit_vartime(i)) {
                (true, true) => &self.gy,
                (true, false) => &self.g,
                (false, true) => &self.y,
                (false, false) => continue,
            };
            acc = self.modulus.mul(&acc, factor);
        }
        let plain: Vec<u8> = be_bytes(&self.modulus.retrieve(&acc)).collect();
        BoxedUint::from_be_slice_vartime(&plain)
    }
}

#[cfg(test)]
mod tests {
    use crypto_bigint::modular::BoxedMontyParams;

    use super::*;

    /// A fixed-seed xorshift generator: reproducible values without a dependency.
    fn xorshift_bytes(seed: &mut u64, len: usize) -> Vec<u8> {
        (0..len)
            .map(|_| {
                *seed ^= *seed << 13;
                *seed ^= *seed >> 7;
                *seed ^= *seed << 17;
                seed.to_le_bytes()[0]
            })
            .collect()
    }

    /// Compares with crypto-bigint's exponentiation, at each width, for odd moduli of DSA's
    /// sizes (Montgomery arithmetic needs only an odd `p`, not a prime).
    #[test]
    fn agrees_with_crypto_bigint_at_each_width() {
        let mut seed = 0x2545_f491_4f6c_dd1d;
        for (p_len, expected_width) in [(128, 16), (256, 32), (384, 48), (100, 16), (250, 32)] {
            let mut p = xorshift_bytes(&mut seed, p_len);
            p[0] |= 0x80;
            p[p_len - 1] |= 1;
            let p = Odd::new(BoxedUint::from_be_slice_vartime(&p)).unwrap();
            let below_p = |seed: &mut u64| {
                let x = BoxedUint::from_be_slice(&xorshift_bytes(seed, p_len), p.bits_precision());
                x.unwrap().rem_vartime(p.as_nz_ref())
            };
            let (g, y) = (below_p(&mut seed), below_p(&mut seed));
            let bases = Bases::new(&p, &g, &y).unwrap();
            let width = match &bases {
                Bases::L16(_) => 16,
                Bases::L32(_) => 32,
                Bases::L48(_) => 48,
            };
            assert_eq!(width, expected_width, "{p_len}-byte p");
            let params = BoxedMontyParams::new_vartime(p.clone());
            let form = |x: &BoxedUint| BoxedMontyForm::new(x.clone(), &params);
            for exponents in [(20, 20), (20, 19), (1, 20), (32, 32), (0, 5), (0, 0)] {
                let u1 = BoxedUint::from_be_slice_vartime(&xorshift_bytes(&mut seed, exponents.0));
                let u2 = BoxedUint::from_be_slice_vartime(&xorshift_bytes(&mut seed, exponents.1));
                let expected = (form(&g).pow(&u1) * form(&y).pow(&u2)).retrieve();
                let ours = bases.g_u1_y_u2(&u1, &u2);
                assert_eq!(
                    ours.to_be_bytes_trimmed_vartime(),
                    expected.to_be_bytes_trimmed_vartime(),
                    "{p_len}-byte p, {exponents:?}-byte exponents"
                );
            }
        }
    }

    #[test]
    fn refuses_what_it_cannot_hold() {
        let p = Odd::new(BoxedUint::from(0xffff_fff1_u64)).unwrap();
        let small = BoxedUint::from(2_u64);
        assert!(Bases::new(&p, &small, &small).is_some());
        assert!(Bases::new(&p, p.as_ref(), &small).is_none(), "g = p");
        assert!(Bases::new(&p, &small, p.as_ref()).is_none(), "y = p");
        let wide = BoxedUint::from_be_slice_vartime(&[0xff; 385]);
        let wide = Odd::new(wide).unwrap();
        assert!(
            Bases::new(&wide, &small, &small).is_none(),
            "p over 3072 bits"
        );
    }
}
