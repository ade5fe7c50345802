//! The one answer every test gives to "are we in CI?": the environment variable `CI` is `true`
//! or `1` (`.ci/run` exports `CI=true`). In CI a missing tool or prerequisite fails the test
//! instead of skipping it.

/// True when `CI` is `true` or `1`.
pub fn in_ci() -> bool {
    matches!(std::env::var("CI").as_deref(), Ok("true") | Ok("1"))
}
