//! Holder crate of the integration tests in `integration/`.
