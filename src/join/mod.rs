//! Stage 5, the join: the [`Verifier`](crate::Verifier) runs the stages for one token, asks
//! the caller's EC2 client about the instance ([`InstanceLookup`](crate::InstanceLookup)),
//! records the join once ([`JoinRegistry`](crate::JoinRegistry)) and only then yields the
//! [`JoinOutcome`](crate::JoinOutcome) with the host id. Input: a blob and the caller's clock.
//! Output: the outcome, or a [`CheckError`](crate::CheckError).

pub(crate) mod enrollment;
pub(crate) mod lookup;
pub(crate) mod outcome;
pub(crate) mod pending;
pub(crate) mod registry;
pub(crate) mod verifier;
