//! Stage 4, the policy: join tokens (Teleport's `ec2` join method), allow rules, the TTL and
//! the checks on what EC2 says about the instance. Input: a verified document, and instance
//! facts from the lookup. Output: the matched rule, or why none matched. Setup-time mistakes in
//! tokens and rules are [`ConfigError`](crate::ConfigError)s, found when they are read.

pub(crate) mod facts;
pub(crate) mod fields;
pub(crate) mod rules;
pub(crate) mod token;
pub(crate) mod ttl;
