//! Heap allocations per `Verifier::verify` are few and do not grow with use.
//!
//! A counting global allocator wraps the system one; this test crate has a single test so no
//! other thread allocates while it counts.
#![cfg(test)] // clippy.toml says why

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use ec2_iid::{AllowRule, Verifier};
use ec2_iid_test_support::fixtures;

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
static BYTES: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts calls.
#[expect(unsafe_code, reason = "a GlobalAlloc impl is unsafe by definition")]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Upper bound on allocations per verification (issue #19's goal). Both backends make 7: the
/// base64 decode buffer and the 6 `String` fields of `IdentityDocument`. Identifiers are stored
/// inline and the Montgomery backend works on stack arrays; this allocator does not see AWS-LC's
/// own C allocations.
const MAX_ALLOCATIONS: usize = 8;

#[test]
fn verify_allocates_little_and_a_constant_amount() {
    let verifier = Verifier::builder(common::trust_with_test_ca("us-east-1"))
        .allow(AllowRule::account("123456789012".parse().unwrap()))
        .build()
        .unwrap();
    let blob = std::fs::read(fixtures::data_path("gen/rsa2048.b64")).unwrap();
    let now = fixtures::NOW_FOR_TESTS.parse().unwrap();
    let mut counts = Vec::new();
    for _ in 0..5 {
        let (before, bytes_before) = (
            ALLOCATIONS.load(Ordering::Relaxed),
            BYTES.load(Ordering::Relaxed),
        );
        let join = verifier.verify(&blob, now).unwrap();
        let after = ALLOCATIONS.load(Ordering::Relaxed);
        let bytes = BYTES.load(Ordering::Relaxed) - bytes_before;
        drop(join);
        counts.push((after - before, bytes));
    }
    println!("allocations, bytes per verify: {counts:?}");
    let (first, _) = counts[0];
    assert!(
        counts.iter().all(|&(n, _)| n == first),
        "varies: {counts:?}"
    );
    assert!(
        first <= MAX_ALLOCATIONS,
        "{first} allocations > {MAX_ALLOCATIONS}"
    );
    assert!(
        counts.iter().all(|&(_, bytes)| bytes < 16 * 1024),
        "{counts:?}"
    );
}
