//! Racing claims against a [`JoinRegistry`], for the registry crates' tests (ec2-iid-aws's
//! DynamoDB, ec2-iid-postgres's replicas), included by `#[path]`. Not part of `common`: it needs
//! tokio, which the core's tests do not.
#![cfg(test)] // clippy.toml says why

use ec2_iid::{JoinClaim, JoinRegistry};

/// Makes all `claims` at once, claim `i` through registry `i % registries.len()`; returns how
/// many won.
pub(crate) async fn claim_all<R>(registries: &[R], claims: Vec<JoinClaim>) -> usize
where
    R: JoinRegistry + Clone + Send + Sync + 'static,
{
    let tasks: Vec<_> = registries
        .iter()
        .cycle()
        .zip(claims)
        .map(|(registry, claim)| {
            let registry = registry.clone();
            tokio::spawn(async move { registry.claim(&claim).await })
        })
        .collect();
    let mut wins = 0;
    for task in tasks {
        if task.await.unwrap().unwrap() {
            wins += 1;
        }
    }
    wins
}
