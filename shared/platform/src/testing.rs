//! Helpers for tests: fresh databases and keys.

use std::path::PathBuf;

use crate::auth::{Role, TokenRequest, TokenSigner};

/// The platform's own tables alone, in the order every service's migrator applies them:
/// for the tests of what the platform itself stores.
#[derive(Debug)]
pub struct PlatformTables;

impl sea_orm_migration::MigratorTrait for PlatformTables {
    fn migrations() -> Vec<Box<dyn sea_orm_migration::MigrationTrait>> {
        use crate::migrations as m;
        vec![
            Box::new(m::m20261129_000001_platform::Migration),
            Box::new(m::m20261201_000001_idempotency_per_caller::Migration),
            Box::new(m::m20261201_000002_write_probe::Migration),
            Box::new(m::m20261202_000001_event_stalls::Migration),
        ]
    }
}

/// A fresh, empty database for one test: a SQLite file in a temporary folder, or a new
/// PostgreSQL database; either is removed when this is dropped.
#[derive(Debug)]
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    /// The PostgreSQL database's name, dropped with this.
    postgres: Option<String>,
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
                    postgres: None,
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
                    postgres: Some(name),
                })
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.postgres.take() else {
            return;
        };
        // Drop is sync and usually runs on a tokio test's runtime thread, where blocking
        // on a runtime panics: the drop gets a thread and a runtime of its own, and this
        // one waits for it so that nothing is left when the test ends. FORCE ends the
        // connections the test's services still hold.
        let dropped = std::thread::spawn(move || -> anyhow::Result<()> {
            use sea_orm::ConnectionTrait;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let conn = sea_orm::Database::connect(postgres_admin_url().as_str()).await?;
                conn.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await?;
                conn.close().await?;
                Ok(())
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("the test database was not dropped: {e:#}"),
            Err(_) => eprintln!("dropping the test database panicked"),
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

/// Request bodies no gRPC message decodes from: garbage, a length that runs past the end,
/// and a varint of eleven bytes. (Invalid UTF-8 is sent in a string field of each
/// request, as [`invalid_utf8_in`] makes it.)
pub const MALFORMED_BODIES: [(&str, &[u8]); 3] = [
    (
        "garbage",
        &[
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ],
    ),
    ("truncated length", &[0x0a, 0x7f, 0x41]),
    (
        "varint overflow",
        &[
            0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
        ],
    ),
];

/// A body whose string field `number` holds bytes that are not UTF-8.
pub fn invalid_utf8_in(number: i32) -> Vec<u8> {
    let mut key = ((number as u64) << 3) | 2;
    let mut out = Vec::new();
    while key >= 0x80 {
        out.push((key as u8) | 0x80);
        key >>= 7;
    }
    out.push(key as u8);
    out.extend([0x02, 0xff, 0xfe]);
    out
}

/// A codec that sends and receives bytes as they are: what a hostile client puts on the
/// wire.
#[derive(Debug, Clone, Default)]
pub struct RawCodec;

#[derive(Debug)]
pub struct RawBytes;

impl tonic::codec::Encoder for RawBytes {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        use prost::bytes::BufMut as _;
        dst.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawBytes {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Vec<u8>>, tonic::Status> {
        use prost::bytes::Buf as _;
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawBytes;
    type Decoder = RawBytes;
    fn encoder(&mut self) -> RawBytes {
        RawBytes
    }
    fn decoder(&mut self) -> RawBytes {
        RawBytes
    }
}

/// One method of a service, as the descriptors say.
#[derive(Debug, Clone)]
pub struct MethodInfo {
    /// `/package.Service/Method`
    pub path: String,
    pub server_streaming: bool,
    /// The number of a top-level string field of its request, if it has one.
    pub string_field: Option<i32>,
}

/// Every method of the gRPC service `service` (`mosharekat.registry.v1.RegistryService`),
/// from the suite's descriptors.
pub fn methods_of(service: &str) -> Vec<MethodInfo> {
    use prost::Message as _;
    use prost_types::field_descriptor_proto::Type;
    let set = prost_types::FileDescriptorSet::decode(mosharekat_api::FILE_DESCRIPTOR_SET)
        .expect("the suite's descriptors decode");
    let message = |full: &str| {
        set.file.iter().find_map(|f| {
            f.message_type
                .iter()
                .find(|m| format!(".{}.{}", f.package(), m.name()) == full)
        })
    };
    let mut out = Vec::new();
    for file in &set.file {
        for svc in &file.service {
            if format!("{}.{}", file.package(), svc.name()) == service {
                for m in &svc.method {
                    let string_field = message(m.input_type()).and_then(|msg| {
                        msg.field
                            .iter()
                            .find(|f| f.r#type() == Type::String)
                            .map(|f| f.number())
                    });
                    out.push(MethodInfo {
                        path: format!("/{service}/{}", m.name()),
                        server_streaming: m.server_streaming(),
                        string_field,
                    });
                }
            }
        }
    }
    out
}

/// Sends each of [`MALFORMED_BODIES`], and invalid UTF-8 in a string field, to every method of `service` with `bearer`, and
/// checks each answer is `INVALID_ARGUMENT` with a field violation, the trace id in
/// `RequestInfo` and a Persian `LocalizedMessage`. Returns how many calls were checked.
pub async fn malformed_bodies_are_invalid_argument(
    channel: tonic::transport::Channel,
    bearer: &str,
    services: &[&str],
) -> usize {
    use tonic_types::StatusExt as _;
    let methods: Vec<_> = services.iter().flat_map(|s| methods_of(s)).collect();
    assert!(!methods.is_empty(), "no methods found for {services:?}");
    let mut checked = 0;
    for m in &methods {
        let (path, streaming) = (&m.path, &m.server_streaming);
        let utf8 = m.string_field.map(invalid_utf8_in);
        let bodies = MALFORMED_BODIES
            .iter()
            .map(|(what, body)| (*what, body.to_vec()))
            .chain(utf8.map(|b| ("invalid UTF-8", b)));
        for (what, body) in bodies {
            let mut grpc = tonic::client::Grpc::new(channel.clone());
            grpc.ready().await.expect("the channel is ready");
            let mut req = tonic::Request::new(body);
            req.metadata_mut()
                .insert("authorization", bearer.parse().expect("an ASCII token"));
            let p = http::uri::PathAndQuery::try_from(path.as_str()).expect("a method path");
            let status = if *streaming {
                match grpc.server_streaming(req, p, RawCodec).await {
                    Ok(mut s) => s
                        .get_mut()
                        .message()
                        .await
                        .expect_err("a malformed request yields no message"),
                    Err(s) => s,
                }
            } else {
                grpc.unary(req, p, RawCodec)
                    .await
                    .expect_err("a malformed request is refused")
            };
            assert_eq!(
                status.code(),
                tonic::Code::InvalidArgument,
                "{path} with {what}: {status:?}"
            );
            let d = status.get_error_details();
            assert!(
                d.bad_request()
                    .is_some_and(|b| !b.field_violations.is_empty()),
                "{path} with {what}: no field violation"
            );
            assert!(
                d.request_info().is_some(),
                "{path} with {what}: no trace id"
            );
            assert_eq!(
                d.localized_message().map(|l| l.locale.clone()).as_deref(),
                Some("fa-IR"),
                "{path} with {what}"
            );
            checked += 1;
        }
    }
    checked
}

/// A CA of the tests' own in a temporary folder, and the certificates it signs.
#[derive(Debug)]
pub struct TestPki {
    pub ca: crate::tls::local::LocalCa,
    /// The CA certificate, PEM.
    pub ca_file: PathBuf,
    pub dir: PathBuf,
    _dir: tempfile::TempDir,
}

impl TestPki {
    pub fn new() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let ca = crate::tls::local::LocalCa::new("mosharekat test CA")?;
        let ca_file = dir.path().join("ca.pem");
        ca.write_ca(&ca_file)?;
        Ok(Self {
            ca,
            ca_file,
            dir: dir.path().to_owned(),
            _dir: dir,
        })
    }

    /// A certificate for `name` (its identity), `localhost` and 127.0.0.1.
    pub fn issue(&self, name: &str) -> crate::tls::local::CertFiles {
        self.ca
            .issue_files(&self.dir, name, &[name, "localhost", "127.0.0.1"])
            .expect("a test certificate")
    }

    /// The TLS settings of service `name` with its own certificate, and a plaintext
    /// health port on loopback.
    pub fn server_args(&self, name: &str, mtls: bool) -> crate::tls::TlsArgs {
        let files = self.issue(name);
        crate::tls::TlsArgs {
            tls_cert: Some(files.cert),
            tls_key: Some(files.key),
            tls_ca: Some(self.ca_file.clone()),
            mtls,
            health_listen: Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0))),
        }
    }

    /// A client of service `peer` trusting this CA, presenting `identity` if given.
    pub fn client(
        &self,
        peer: &str,
        identity: Option<&crate::tls::local::CertFiles>,
    ) -> crate::tls::ClientTls {
        crate::tls::ClientTls::from_files(
            &self.ca_file,
            identity.map(|f| (f.cert.as_path(), f.key.as_path())),
            peer,
        )
        .expect("a test TLS client")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::ConnectionTrait;

    async fn exists(name: &str) -> bool {
        let admin = sea_orm::Database::connect(postgres_admin_url().as_str())
            .await
            .unwrap();
        let row = admin
            .query_one_raw(sea_orm::Statement::from_sql_and_values(
                sea_orm::DatabaseBackend::Postgres,
                "SELECT count(*) AS n FROM pg_database WHERE datname = $1",
                [name.into()],
            ))
            .await
            .unwrap()
            .unwrap();
        let n: i64 = row.try_get("", "n").unwrap();
        admin.close().await.unwrap();
        n == 1
    }

    /// A PostgreSQL test database is gone once its `TestDb` is dropped, from a tokio test
    /// and while a connection to it is still open.
    #[tokio::test]
    async fn a_postgres_test_database_is_dropped_with_it() {
        let db = TestDb::new(Backend::Postgres).await.unwrap();
        let name = db.url.rsplit('/').next().unwrap().to_owned();
        assert!(name.starts_with("t_"), "{name}");
        let held = sea_orm::Database::connect(db.url.as_str()).await.unwrap();
        held.execute_unprepared("CREATE TABLE x (a INT)")
            .await
            .unwrap();
        assert!(exists(&name).await);
        drop(db);
        assert!(!exists(&name).await, "{name} remains");
        let sqlite = TestDb::new(Backend::Sqlite).await.unwrap();
        let file = std::path::PathBuf::from(sqlite.url.trim_start_matches("sqlite://"));
        let dir = file.parent().unwrap().to_owned();
        assert!(dir.exists());
        drop(sqlite);
        assert!(!dir.exists(), "{dir:?} remains");
    }
}
