//! Certificates through `serve --ca-cert` and `join --out-dir`.
#![cfg(test)] // clippy.toml says why
