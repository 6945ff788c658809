//! Montgomery arithmetic modulo an odd `n` below `R = 2^(64·L)`, on stack arrays of `L`
//! little-endian 64-bit limbs.
//!
//! This is the per-verification half of the RSA public operation: fixed sizes let the
//! compiler keep every loop bound constant, and nothing touches the heap. Every value here is
//! public (modulus, signature, result), so the code is variable-time: it branches on carries
//! and on the final comparison with `n`.

/// A sum of up to 2^64 limb products, three limbs wide: one column of a product-scanning
/// multiplication.
///
/// Adding a product is one add and two add-with-carry (summing the products' low and high
/// halves in two u128 took four).
#[derive(Clone, Copy, Default)]
struct Accumulator {
    low: u64,
    mid: u64,
    high: u64,
}

impl Accumulator {
    /// Adds `a·b`.
    #[inline(always)]
    fn mac(&mut self, a: u64, b: u64) {
        let (low, high) = a.carrying_mul(b, 0);
        self.add_wide(low, high);
    }

    /// Adds `low + high·2^64`.
    #[inline(always)]
    fn add_wide(&mut self, low: u64, high: u64) {
        let (sum, carry) = self.low.overflowing_add(low);
        let (mid, carry) = self.mid.carrying_add(high, carry);
        self.low = sum;
        self.mid = mid;
        self.high += u64::from(carry);
    }

    /// Adds another column sum.
    #[inline(always)]
    fn add(&mut self, other: &Self) {
        self.add_wide(other.low, other.mid);
        self.high += other.high;
    }

    /// The lowest limb of the sum.
    #[inline(always)]
    fn low(&self) -> u64 {
        self.low
    }

    /// Drops the lowest limb (done, or zero by the choice of `m_k`): divides by 2^64.
    #[inline(always)]
    fn shift(&mut self) {
        self.low = self.mid;
        self.mid = self.high;
        self.high = 0;
    }
}

/// Adds `x[0]·y[0] + x[1]·y[1] + …` for `x` and `y` of the same length: the products of
/// one column, given the column's second factors in reverse order.
///
/// Both slices run forward, so one index drives the loop; even and odd steps go to two sums,
/// so that neither waits for the other's additions.
#[inline(always)]
fn add_products(acc: &mut Accumulator, x: &[u64], y: &[u64]) {
    let (x_pairs, x_rest) = x.as_chunks::<2>();
    let (y_pairs, y_rest) = y.as_chunks::<2>();
    let mut odd = Accumulator::default();
    for ([x0, x1], [y0, y1]) in x_pairs.iter().zip(y_pairs) {
        acc.mac(*x0, *y0);
        odd.mac(*x1, *y1);
    }
    for (x_i, y_i) in x_rest.iter().zip(y_rest) {
        acc.mac(*x_i, *y_i);
    }
    acc.add(&odd);
}

/// `a²` as its low and high `L` limbs.
///
/// Row by row, each product `a_i·a_j` with `i < j` is computed once; the sum is then doubled
/// and the squares `a_i²` added: about half the products of a general multiplication.
#[expect(
    clippy::indexing_slicing,
    reason = "row i covers limbs 2i+1 to i+L-1 and its carry limb i+L, all below 2L"
)]
fn square<const L: usize>(a: &[u64; L]) -> [[u64; L]; 2] {
    let mut t = [[0_u64; L]; 2];
    let t_flat = t.as_flattened_mut();
    for (i, &a_i) in a.iter().enumerate() {
        let mut carry = 0;
        for (t_k, &a_j) in t_flat[2 * i + 1..i + L].iter_mut().zip(&a[i + 1..]) {
            // a_i·a_j + t_k first, off the carry chain; then the carry.
            let (low, high) = a_i.carrying_mul(a_j, *t_k);
            let (low, overflow) = low.overflowing_add(carry);
            *t_k = low;
            carry = high + u64::from(overflow);
        }
        t_flat[i + L] = carry;
    }
    double_and_add_squares(t_flat, a);
    t
}

/// `2·t + Σ a_i²·2^(128·i)` in place: the last step of [`square`], given the sum `t` of the
/// products `a_i·a_j` with `i < j` (below `a²/2`, so nothing is lost).
fn double_and_add_squares(t: &mut [u64], a: &[u64]) {
    let mut shifted_out = 0;
    let mut carry = false;
    for ([t0, t1], &a_i) in t.as_chunks_mut::<2>().0.iter_mut().zip(a) {
        let (low, high) = a_i.carrying_mul(a_i, 0);
        let doubled0 = (*t0 << 1) | shifted_out;
        let doubled1 = (*t1 << 1) | (*t0 >> 63);
        shifted_out = *t1 >> 63;
        let (sum0, c) = doubled0.carrying_add(low, carry);
        let (sum1, c) = doubled1.carrying_add(high, c);
        (*t0, *t1, carry) = (sum0, sum1, c);
    }
}

/// An odd modulus prepared for Montgomery multiplication with `R = 2^(64·L)`.
#[derive(Clone, Debug)]
pub(crate) struct Modulus<const L: usize> {
    n: [u64; L],
    /// `n`'s limbs from the most significant: a column's products `m_i·n_(k-i)` then take
    /// both factors in increasing address order.
    n_rev: [u64; L],
    /// `-n⁻¹ mod 2^64`: the factor that clears the lowest limb in each reduction step.
    n0_inv: u64,
}

impl<const L: usize> Modulus<L> {
    /// `None` unless `n` is odd (Montgomery reduction needs `n` invertible modulo 2^64).
    pub(crate) fn new(n: [u64; L]) -> Option<Self> {
        let n0 = *n.first()?;
        if n0 & 1 == 0 {
            return None;
        }
        // Newton's iteration doubles the correct low bits of an inverse each step; `n0` is its
        // own inverse modulo 8 (3 bits), so five steps reach 96 ≥ 64 bits.
        let mut inv = n0;
        for _ in 0..5 {
            inv = inv.wrapping_mul(2_u64.wrapping_sub(n0.wrapping_mul(inv)));
        }
        let mut n_rev = n;
        n_rev.reverse();
        Some(Self {
            n,
            n_rev,
            n0_inv: inv.wrapping_neg(),
        })
    }

    /// The modulus.
    pub(crate) fn limbs(&self) -> &[u64; L] {
        &self.n
    }

    /// `a·b·R⁻¹ mod n` for `a, b < n`.
    ///
    /// Product scanning (Koç, Acar and Kaliski's FIPS): limb `k` of `a·b + m·n` is summed
    /// column by column, and `m_k` is chosen as soon as column `k` is complete so that the
    /// column is zero. There is no carry to pass along a row, as in the row-wise CIOS form,
    /// whose carries form one serial chain.
    #[expect(
        clippy::indexing_slicing,
        reason = "column k < 2L takes limbs max(0, k + 1 - L) to min(k, L - 1) of the factors, and the matching ones of the reversed factors: all below L"
    )]
    pub(crate) fn mul(&self, a: &[u64; L], b: &[u64; L]) -> [u64; L] {
        let (n, n_rev) = (&self.n, &self.n_rev);
        let mut b_rev = *b;
        b_rev.reverse();
        let mut m = [0_u64; L];
        let mut t = [0_u64; L];
        // Two sums per column, one for a·b and one for m·n, so that the two products of a
        // step do not wait for each other's additions.
        let mut acc = Accumulator::default();
        for k in 0..L {
            let mut mn = Accumulator::default();
            add_products(&mut acc, &a[..=k], &b_rev[L - 1 - k..]);
            add_products(&mut mn, &m[..k], &n_rev[L - 1 - k..L - 1]);
            acc.add(&mn);
            m[k] = acc.low().wrapping_mul(self.n0_inv);
            acc.mac(m[k], n[0]);
            acc.shift();
        }
        for k in L..(2 * L) {
            let mut mn = Accumulator::default();
            add_products(&mut acc, &a[k + 1 - L..], &b_rev[..2 * L - 1 - k]);
            add_products(&mut mn, &m[k + 1 - L..], &n_rev[..2 * L - 1 - k]);
            acc.add(&mn);
            t[k - L] = acc.low();
            acc.shift();
        }
        self.reduce_once(t, acc.low())
    }

    /// `a²·R⁻¹ mod n` for `a < n`: the same as `mul(a, a)`, with [`square`]'s half of the
    /// products and then a separate reduction.
    pub(crate) fn square(&self, a: &[u64; L]) -> [u64; L] {
        self.reduce(&square(a))
    }

    /// The plain value `a·R⁻¹ mod n` of the internal value `a < n`.
    pub(crate) fn retrieve(&self, a: &[u64; L]) -> [u64; L] {
        self.reduce(&[*a, [0; L]])
    }

    /// `t·R⁻¹ mod n` for `t < n·R`, given as its low and high `L` limbs: Montgomery
    /// reduction, by product scanning as in [`Self::mul`].
    #[expect(
        clippy::indexing_slicing,
        reason = "column k < 2L takes limbs max(0, k + 1 - L) to min(k, L - 1) of the factors, and the matching ones of the reversed factors: all below L"
    )]
    fn reduce(&self, t: &[[u64; L]; 2]) -> [u64; L] {
        let (n, n_rev) = (&self.n, &self.n_rev);
        let [t_low, t_high] = t;
        let mut m = [0_u64; L];
        let mut u = [0_u64; L];
        let mut acc = Accumulator::default();
        for k in 0..L {
            add_products(&mut acc, &m[..k], &n_rev[L - 1 - k..L - 1]);
            acc.add_wide(t_low[k], 0);
            m[k] = acc.low().wrapping_mul(self.n0_inv);
            acc.mac(m[k], n[0]);
            acc.shift();
        }
        for k in L..(2 * L) {
            add_products(&mut acc, &m[k + 1 - L..], &n_rev[..2 * L - 1 - k]);
            acc.add_wide(t_high[k - L], 0);
            u[k - L] = acc.low();
            acc.shift();
        }
        self.reduce_once(u, acc.low())
    }

    /// `a·b·2^(-64·S) mod n` for a short `a` (`S ≤ L` limbs) and `b < n`: Montgomery
    /// multiplication by `S` limbs, about `2·S·L` limb products instead of `2·L²`.
    #[expect(
        clippy::indexing_slicing,
        reason = "column k < L + S takes a_i, m_i for i < min(k + 1, S) and b, n at k - i, \
                  below L because i ≥ k + 1 - L"
    )]
    pub(crate) fn mul_short<const S: usize>(&self, a: &[u64; S], b: &[u64; L]) -> [u64; L] {
        let n = &self.n;
        let mut m = [0_u64; S];
        let mut t = [0_u64; L];
        let mut acc = Accumulator::default();
        for k in 0..L + S {
            for i in (k + 1).saturating_sub(L)..S.min(k + 1) {
                acc.mac(a[i], b[k - i]);
                if i < k {
                    acc.mac(m[i], n[k - i]);
                }
            }
            if k < S {
                m[k] = acc.low().wrapping_mul(self.n0_inv);
                acc.mac(m[k], n[0]);
            } else {
                t[k - S] = acc.low();
            }
            acc.shift();
        }
        // (a·b + m·n) / 2^(64·S) < (2^(64·S)·n + 2^(64·S)·n) / 2^(64·S) = 2n.
        self.reduce_once(t, acc.low())
    }

    /// `a + b mod n` for `a, b < n`.
    pub(crate) fn add(&self, a: &[u64; L], b: &[u64; L]) -> [u64; L] {
        let mut sum = *a;
        let mut carry = false;
        for (s_j, &b_j) in sum.iter_mut().zip(b) {
            (*s_j, carry) = s_j.carrying_add(b_j, carry);
        }
        self.reduce_once(sum, u64::from(carry))
    }

    /// `t + top·R` reduced below `n`, given that it is below `2n`.
    fn reduce_once(&self, mut t: [u64; L], top: u64) -> [u64; L] {
        if top != 0 || !less_than(&t, &self.n) {
            let mut borrow = false;
            for (t_j, &n_j) in t.iter_mut().zip(&self.n) {
                (*t_j, borrow) = t_j.borrowing_sub(n_j, borrow);
            }
        }
        t
    }
}

/// `a < b`, compared from the most significant limb.
pub(crate) fn less_than<const L: usize>(a: &[u64; L], b: &[u64; L]) -> bool {
    for (x, y) in a.iter().rev().zip(b.iter().rev()) {
        if x != y {
            return x < y;
        }
    }
    false
}

/// The limbs of a big-endian magnitude; `None` if it needs more than `L` limbs.
pub(crate) fn from_be_bytes<const L: usize>(bytes: &[u8]) -> Option<[u64; L]> {
    let significant = bytes.get(bytes.iter().take_while(|&&b| b == 0).count()..)?;
    if significant.len() > 8 * L {
        return None;
    }
    let mut limbs = [0_u64; L];
    for (limb, chunk) in limbs.iter_mut().zip(significant.rchunks(8)) {
        *limb = chunk.iter().fold(0, |acc, &b| (acc << 8) | u64::from(b));
    }
    Some(limbs)
}

/// The `8·L` big-endian bytes of `limbs`.
pub(crate) fn be_bytes<const L: usize>(limbs: &[u64; L]) -> impl Iterator<Item = u8> + '_ {
    limbs.iter().rev().flat_map(|limb| limb.to_be_bytes())
}

#[cfg(test)]
mod tests {
    use crypto_bigint::modular::{BoxedMontyForm, BoxedMontyParams};
    use crypto_bigint::{BoxedUint, MontyForm as _, Odd};

    use super::*;

    /// A fixed-seed xorshift generator: reproducible test values without a dependency.
    struct Xorshift(u64);

    impl Xorshift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn limbs<const L: usize>(&mut self) -> [u64; L] {
            core::array::from_fn(|_| self.next())
        }
    }

    fn to_boxed<const L: usize>(limbs: &[u64; L]) -> BoxedUint {
        let bytes: Vec<u8> = be_bytes(limbs).collect();
        BoxedUint::from_be_slice(&bytes, 64 * u32::try_from(L).unwrap()).unwrap()
    }

    fn from_boxed<const L: usize>(n: &BoxedUint) -> [u64; L] {
        from_be_bytes(&n.to_be_bytes()).unwrap()
    }

    /// Values below `n`: random, and the edges 0, 1, n - 1.
    fn operands<const L: usize>(rng: &mut Xorshift, n: &[u64; L]) -> Vec<[u64; L]> {
        let mut values = vec![[0; L], from_be_bytes(&[1]).unwrap()];
        let mut n_minus_1 = *n;
        n_minus_1[0] -= 1;
        values.push(n_minus_1);
        for _ in 0..20 {
            let mut v = rng.limbs::<L>();
            v[L - 1] %= n[L - 1].max(1);
            values.push(v);
        }
        values
    }

    /// Compares `mul` with crypto-bigint's Montgomery multiplication, whose
    /// internal values are the same `x·R⁻¹` residues when its precision is `64·L` bits.
    fn agrees_with_crypto_bigint<const L: usize>(n: [u64; L]) {
        let modulus = Modulus::new(n).unwrap();
        let params = BoxedMontyParams::new_vartime(Odd::new(to_boxed(&n)).unwrap());
        let mont = |x: &[u64; L]| BoxedMontyForm::from_montgomery(to_boxed(x), &params);
        let mut rng = Xorshift(0x9e37_79b9_7f4a_7c15 ^ n[0]);
        let values = operands(&mut rng, &n);
        for a in &values {
            for b in &values {
                let expected: [u64; L] = from_boxed(&mont(a).mul(&mont(b)).into_montgomery());
                assert_eq!(modulus.mul(a, b), expected, "{a:x?} · {b:x?}");
            }
            let expected: [u64; L] = from_boxed(&mont(a).square().into_montgomery());
            assert_eq!(modulus.square(a), expected, "{a:x?}²");
            let expected: [u64; L] = from_boxed(&mont(a).retrieve());
            assert_eq!(modulus.retrieve(a), expected, "{a:x?}·R⁻¹");
        }
        // Plain residues now: `x` as a form whose plain value is `x`.
        let plain = |x: &[u64; L]| BoxedMontyForm::new(to_boxed(x), &params);
        // 2^(64·limbs) mod n, by doubling 1.
        let two_pow = |limbs: usize| {
            let one: [u64; L] = from_be_bytes(&[1]).unwrap();
            (0..64 * limbs)
                .fold(plain(&one), |acc, _| acc.clone() + acc)
                .retrieve()
        };
        let (short_2, short_4) = (two_pow(2), two_pow(4));
        for a in &values {
            for b in &values {
                let expected: [u64; L] = from_boxed(&(plain(a) + plain(b)).retrieve());
                assert_eq!(modulus.add(a, b), expected, "{a:x?} + {b:x?}");
                let a2: [u64; 2] = core::array::from_fn(|i| a.get(i).copied().unwrap_or(0));
                let a4: [u64; 4] = core::array::from_fn(|i| a.get(i).copied().unwrap_or(0));
                let widen = |short: &[u64]| -> [u64; L] {
                    core::array::from_fn(|i| short.get(i).copied().unwrap_or(0))
                };
                // mul_short(a, b)·2^(64·S) ≡ a·b (mod n).
                for (short, scale, ours) in [
                    (widen(&a2), &short_2, modulus.mul_short(&a2, b)),
                    (widen(&a4), &short_4, modulus.mul_short(&a4, b)),
                ] {
                    assert!(less_than(&ours, &n), "reduced");
                    let lhs =
                        (plain(&ours) * BoxedMontyForm::new(scale.clone(), &params)).retrieve();
                    let rhs = (plain(&short) * plain(b)).retrieve();
                    assert_eq!(lhs, rhs, "{short:x?} ·short {b:x?}");
                }
            }
        }
    }

    #[test]
    fn mul_agrees_with_crypto_bigint() {
        let mut rng = Xorshift(0x2545_f491_4f6c_dd1d);
        for top in [
            u64::MAX,
            1 << 63,
            (1 << 63) | 1,
            0x8000_0000_0000_00ff,
            1,
            0xffff,
        ] {
            let mut n16 = rng.limbs::<16>();
            n16[0] |= 1;
            n16[15] = top;
            agrees_with_crypto_bigint(n16);
            let mut n32 = rng.limbs::<32>();
            n32[0] |= 1;
            n32[31] = top;
            agrees_with_crypto_bigint(n32);
        }
        // All ones: every carry chain runs its full length.
        agrees_with_crypto_bigint([u64::MAX; 32]);
        agrees_with_crypto_bigint([u64::MAX; 1]);
        agrees_with_crypto_bigint([3_u64]);
    }

    #[test]
    fn n0_inv_is_minus_the_inverse() {
        let mut rng = Xorshift(7);
        for _ in 0..100 {
            let n0 = rng.next() | 1;
            let m = Modulus::new([n0]).unwrap();
            assert_eq!(n0.wrapping_mul(m.n0_inv), u64::MAX, "n0 = {n0:#x}");
        }
        assert!(Modulus::new([4_u64]).is_none());
        assert!(Modulus::<0>::new([]).is_none());
    }

    #[test]
    fn byte_conversions() {
        assert_eq!(from_be_bytes::<2>(&[1, 2]), Some([0x0102, 0]));
        assert_eq!(
            from_be_bytes::<2>(&[0, 0, 0, 9, 1, 2, 3, 4, 5, 6, 7, 8]),
            Some([0x0102_0304_0506_0708, 9])
        );
        assert_eq!(from_be_bytes::<1>(&[1; 9]), None);
        assert_eq!(
            from_be_bytes::<1>(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
            Some([1])
        );
        assert_eq!(from_be_bytes::<1>(&[]), Some([0]));
        let limbs = [0x0102_0304_0506_0708, 0x1112_1314_1516_1718];
        let bytes: Vec<u8> = be_bytes(&limbs).collect();
        assert_eq!(bytes[0], 0x11);
        assert_eq!(bytes[15], 0x08);
        assert_eq!(from_be_bytes::<2>(&bytes), Some(limbs));
        assert!(less_than(&[5, 1], &[4, 2]));
        assert!(!less_than(&[4, 2], &[4, 2]));
        assert!(!less_than(&[0, 3], &[9, 2]));
    }
}
