//! The Montgomery RSA backend and the `rsa` crate agree on random keys, each of 1 024 to
//! 4 096 bits, and accept exactly the valid signatures.
//!
//! A key is the product of 17 to 64 distinct random 64-bit primes (multi-prime RSA: the
//! public operation does not care how `n` factors, and 64-bit primes are found in
//! microseconds), so every limb of `n`, its top limb and `-n⁻¹ mod 2^64` vary with the input.
//! Signing is `EM^(e⁻¹ mod (p-1))` per prime, combined with the Chinese remainder theorem.
//!
//! Input: a prime-count byte, an 8-byte prime seed, an exponent selector, 32 bytes of digest,
//! then `(position, xor)` byte pairs applied to the encoded message before it is signed, and
//! an optional final byte that, when the pairs are odd in number, flips one signature bit.
#![no_main]

use ec2_iid::internal::{self, Backend};
use rsa::pkcs8::EncodePublicKey as _;
use rsa::{BoxedUint, PublicKey};

/// `a·b mod m`.
fn mul_mod(a: u64, b: u64, m: u64) -> u64 {
    (u128::from(a) * u128::from(b) % u128::from(m)) as u64
}

/// `base^exp mod m`.
fn pow_mod(mut base: u64, mut exp: u64, m: u64) -> u64 {
    let mut acc = 1 % m;
    base %= m;
    while exp > 0 {
        if exp & 1 == 1 {
            acc = mul_mod(acc, base, m);
        }
        base = mul_mod(base, base, m);
        exp >>= 1;
    }
    acc
}

/// `a⁻¹ mod m`, if `gcd(a, m) = 1`.
fn inv_mod(a: u64, m: u64) -> Option<u64> {
    let (mut r0, mut r1) = (i128::from(m), i128::from(a % m));
    let (mut t0, mut t1) = (0_i128, 1_i128);
    while r1 != 0 {
        let q = r0 / r1;
        (r0, r1) = (r1, r0 - q * r1);
        (t0, t1) = (t1, t0 - q * t1);
    }
    (r0 == 1).then(|| t0.rem_euclid(i128::from(m)) as u64)
}

/// Miller–Rabin with the bases that decide primality for every 64-bit number.
fn is_prime(n: u64) -> bool {
    const SMALL: [u64; 12] = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37];
    if n < 2 {
        return false;
    }
    for p in SMALL {
        if n.is_multiple_of(p) {
            return n == p;
        }
    }
    let (d, s) = (
        (n - 1) >> (n - 1).trailing_zeros(),
        (n - 1).trailing_zeros(),
    );
    SMALL.iter().all(|&a| {
        let mut x = pow_mod(a, d, n);
        if x == 1 || x == n - 1 {
            return true;
        }
        (1..s).any(|_| {
            x = mul_mod(x, x, n);
            x == n - 1
        })
    })
}

/// `count` distinct 64-bit primes (top bit set) with `gcd(e, p - 1) = 1`, from `seed`.
fn primes(count: usize, mut seed: u64, e: u64) -> Vec<u64> {
    let mut next = || {
        // splitmix64
        seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let mut out: Vec<u64> = Vec::with_capacity(count);
    while out.len() < count {
        let candidate = next() | (1 << 63) | 1;
        if is_prime(candidate) && inv_mod(e, candidate - 1).is_some() && !out.contains(&candidate) {
            out.push(candidate);
        }
    }
    out
}

/// Little-endian limbs of `x mod p`.
fn rem(x: &[u64], p: u64) -> u64 {
    x.iter().rev().fold(0, |acc, &limb| {
        ((u128::from(acc) << 64 | u128::from(limb)) % u128::from(p)) as u64
    })
}

/// `x += y·h` on little-endian limbs (`x` long enough).
fn add_mul(x: &mut [u64], y: &[u64], h: u64) {
    let mut carry = 0_u128;
    for (i, x_i) in x.iter_mut().enumerate() {
        let sum =
            u128::from(*x_i) + u128::from(y.get(i).copied().unwrap_or(0)) * u128::from(h) + carry;
        *x_i = sum as u64;
        carry = sum >> 64;
    }
    assert_eq!(carry, 0, "add_mul overflow");
}

/// Big-endian bytes of little-endian limbs, `len` bytes (leading zeros dropped).
fn to_be(limbs: &[u64], len: usize) -> Vec<u8> {
    let bytes: Vec<u8> = limbs.iter().rev().flat_map(|l| l.to_be_bytes()).collect();
    bytes[bytes.len() - len..].to_vec()
}

/// Little-endian limbs of a big-endian magnitude.
fn from_be(bytes: &[u8], limbs: usize) -> Vec<u64> {
    let mut out = vec![0; limbs];
    for (limb, chunk) in out.iter_mut().zip(bytes.rchunks(8)) {
        *limb = chunk.iter().fold(0, |acc, &b| (acc << 8) | u64::from(b));
    }
    out
}

/// A multi-prime key: `n`'s limbs, its length in bytes, and the primes.
struct Key {
    n: Vec<u64>,
    k: usize,
    primes: Vec<u64>,
    e: u64,
}

impl Key {
    fn new(primes: Vec<u64>, e: u64) -> Self {
        let mut n = vec![0; primes.len() + 1];
        n[0] = 1;
        for &p in &primes {
            let copy = n.clone();
            n.iter_mut().for_each(|limb| *limb = 0);
            add_mul(&mut n, &copy, p);
        }
        let top = n.iter().rposition(|&l| l != 0).unwrap_or(0);
        let bits = 64 * top + (64 - n[top].leading_zeros() as usize);
        Self {
            k: bits.div_ceil(8),
            n,
            primes,
            e,
        }
    }

    /// `em^d mod n` by the Chinese remainder theorem (Garner), `k` bytes.
    fn sign(&self, em: &[u8]) -> Vec<u8> {
        let em = from_be(em, self.n.len());
        let mut s = vec![0; self.n.len()];
        let mut modulus = vec![0; self.n.len()];
        modulus[0] = 1;
        for &p in &self.primes {
            let d = inv_mod(self.e, p - 1).expect("e invertible modulo p - 1");
            let target = pow_mod(rem(&em, p), d, p);
            let (s_mod, m_mod) = (rem(&s, p), rem(&modulus, p));
            let difference =
                ((u128::from(target) + u128::from(p) - u128::from(s_mod)) % u128::from(p)) as u64;
            let h = mul_mod(difference, inv_mod(m_mod, p).expect("coprime"), p);
            add_mul(&mut s, &modulus, h);
            let copy = modulus.clone();
            modulus.iter_mut().for_each(|limb| *limb = 0);
            add_mul(&mut modulus, &copy, p);
        }
        to_be(&s, self.k)
    }

    fn spki(&self) -> Option<Vec<u8>> {
        let n = BoxedUint::from_be_slice_vartime(&to_be(&self.n, self.k));
        let key = PublicKey::new(n, BoxedUint::from(self.e)).ok()?;
        Some(key.to_public_key_der().ok()?.as_bytes().to_vec())
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&[count, s0, s1, s2, s3, s4, s5, s6, s7, e_byte], rest)) =
        data.split_first_chunk::<10>()
    else {
        return;
    };
    let Some((digest, rest)) = rest.split_first_chunk::<32>() else {
        return;
    };
    let e = match e_byte % 6 {
        0 => 3,
        1 => 5,
        2 => 17,
        3 => 257,
        4 => 65537,
        _ => u64::from(u32::from_le_bytes([s0, s1, e_byte, s3])) | 3,
    };
    let count = 17 + usize::from(count) % 48;
    let key = Key::new(
        primes(
            count,
            u64::from_le_bytes([s0, s1, s2, s3, s4, s5, s6, s7]),
            e,
        ),
        e,
    );
    let Some(spki) = key.spki() else {
        return;
    };
    let backend = |b| internal::from_public_key_der_with_backend(&spki, b).expect("key");
    let (montgomery, rsa_crate) = (backend(Backend::Montgomery), backend(Backend::RsaCrate));

    let k = key.k;
    let mut em = ec2_iid_fuzz::sha256_encoded_message(k, digest);
    let valid = em.clone();
    let pairs = rest.chunks_exact(2);
    let flip = pairs.remainder().first().copied();
    for pair in pairs.take(16) {
        em[usize::from(pair[0]) % k] ^= pair[1];
    }
    if em.as_slice() >= to_be(&key.n, k).as_slice() {
        return;
    }
    let mut signature = key.sign(&em);
    if let Some(bit) = flip {
        signature[usize::from(bit >> 3) % k] ^= 1 << (bit & 7);
    }
    let ours = montgomery.verify_sha256_digest(digest, &signature).is_ok();
    let theirs = rsa_crate.verify_sha256_digest(digest, &signature).is_ok();
    assert_eq!(ours, theirs, "backends disagree ({count} primes, e = {e})");
    // A flipped signature bit changes `s` modulo some prime, so `s^e` too (e is coprime to
    // p - 1, so x ↦ x^e is a bijection modulo p).
    assert_eq!(
        ours,
        em == valid && flip.is_none(),
        "verdict ({count} primes, e = {e})"
    );
});
