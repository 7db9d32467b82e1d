//! Tests of the crate through its public API, built into its unit-test
//! binary (one test binary per crate; end-to-end suites are in `tests/`).

mod auth;
mod policy;
mod routing;
