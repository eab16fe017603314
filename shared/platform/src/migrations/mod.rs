//! The platform's own tables, which every service's migrator runs first.

pub mod m20261129_000001_platform;
