//! Nothing here: the tests in `tests/` drive a daojia server with the official `kurrentdb`
//! client.
