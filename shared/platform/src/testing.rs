//! Helpers for tests: fresh databases and keys.

use std::path::PathBuf;

use crate::auth::{Role, TokenRequest, TokenSigner};

/// A fresh, empty database for one test: a SQLite file in a temporary folder, or a new
/// PostgreSQL database (dropped when the test ends is not attempted: names are unique).
#[derive(Debug)]
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The PostgreSQL server tests create their databases in.
pub fn postgres_admin_url() -> String {
    std::env::var("MOSHAREKAT_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

impl TestDb {
    pub async fn new(backend: Backend) -> anyhow::Result<Self> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir()?;
                let url = format!("sqlite://{}", dir.path().join("test.db").display());
                Ok(Self {
                    url,
                    _dir: Some(dir),
                })
            }
            Backend::Postgres => {
                use sea_orm::ConnectionTrait;
                let admin = postgres_admin_url();
                let name = format!("t_{}", uuid::Uuid::now_v7().simple());
                let conn = sea_orm::Database::connect(admin.as_str()).await?;
                conn.execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await?;
                conn.close().await?;
                let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
                Ok(Self {
                    url: format!("{base}/{name}"),
                    _dir: None,
                })
            }
        }
    }
}

/// A key pair in a temporary folder, and a signer for minting test tokens.
#[derive(Debug)]
pub struct TestKeys {
    pub public_key: PathBuf,
    pub private_key: PathBuf,
    pub signer: TokenSigner,
    _dir: tempfile::TempDir,
}

impl TestKeys {
    pub fn new() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let (private_key, public_key) = crate::auth::ensure_keypair(dir.path())?;
        let signer = TokenSigner::from_pem_file(&private_key)?;
        Ok(Self {
            public_key,
            private_key,
            signer,
            _dir: dir,
        })
    }

    /// A bearer token value (`Bearer …`) for `role`.
    pub fn bearer(&self, role: Role, institution: Option<&str>) -> String {
        self.bearer_with(role, |r| r.institution = institution.map(str::to_owned))
    }

    /// A bearer token for `role`, its claims adjusted by `f`.
    pub fn bearer_with(&self, role: Role, f: impl FnOnce(&mut TokenRequest)) -> String {
        let mut req = TokenRequest {
            subject: format!("test-{}", role.as_str().to_lowercase()),
            member: (role == Role::Member).then(|| "member-1".into()),
            service: (role == Role::Service).then(|| "test".into()),
            lifetime: std::time::Duration::from_secs(3600),
            ..Default::default()
        };
        f(&mut req);
        let t = self.signer.mint(role, &req).expect("a test token mints");
        format!("Bearer {t}")
    }
}
