//! What every service of the suite shares, written once.
//!
//! - [`config`]: settings from flags and environment;
//! - [`server`]: the gRPC server with its edge middleware (tracing, admission, auth,
//!   deadline, metrics), health, reflection and graceful shutdown;
//! - [`client`]: calling peers with deadlines, retries, the service token and trace
//!   context (each service's typed client lives beside it: `mosharekat-registry-client`,
//!   `mosharekat-referral-client`);
//! - [`change`]: the one change path and the one idempotent-create path;
//! - [`clock`]: the injectable time source;
//! - [`telemetry`] and [`metrics`]: logs, OpenTelemetry traces, Prometheus;
//! - [`db`], [`sql`], [`pagination`], [`idempotency`], [`audit`]: persistence and its
//!   conventions;
//! - [`migrations`]: the platform's own tables, which every service's migrator applies;
//! - `testing` (feature `test-util`, never in release builds): fresh databases, keys and
//!   certificates for tests;
//! - [`stalls`]: a followed event that keeps failing: recorded, retried with backoff,
//!   reported (metric, log, health) and resolved by an administrator;
//! - [`error`]: the one mapping from errors to `tonic::Status` with rich details;
//! - [`auth`] and [`ctx`]: tokens, roles and what a handler knows of its caller;
//! - [`tls`]: TLS and mutual TLS on the gRPC port (certificates re-read when they change)
//!   and for the peer clients;
//! - [`public`]: the public record's switch, its CSV and the public methods' list;
//! - [`cli`]: the `keys` and `token` subcommands.
#![forbid(unsafe_code)]

pub mod audit;
pub mod auth;
pub mod change;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod ctx;
pub mod db;
pub mod error;
pub mod follow;
pub mod idempotency;
pub mod metrics;
pub mod migrations;
pub mod pagination;
pub mod public;
pub mod server;
pub mod sql;
pub mod stalls;
pub mod telemetry;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;
pub mod tls;

pub use mosharekat_persian as persian;
