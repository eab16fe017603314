//! What every service binary shares on its command line: the subcommands (serve, migrate,
//! keys, token) and running them with telemetry set up and torn down.

use std::path::PathBuf;
use std::time::Duration;

use crate::auth::{Role, TokenRequest, TokenSigner, ensure_keypair};

/// Creates an Ed25519 key pair for signing tokens (kept if one is there already).
#[derive(Debug, Clone, clap::Args)]
pub struct KeysArgs {
    /// Folder to write signing.key.pem (private, mode 0600) and signing.pub.pem into.
    #[arg(long, default_value = "data")]
    pub dir: PathBuf,
}

impl KeysArgs {
    pub fn run(&self) -> anyhow::Result<()> {
        let (private, public) = ensure_keypair(&self.dir)?;
        let kid = TokenSigner::from_pem_file(&private)?.kid().to_owned();
        println!(
            "private key: {}\npublic key:  {}\nkey id:      {kid}",
            private.display(),
            public.display()
        );
        Ok(())
    }
}

/// Mints a bearer token for a role.
#[derive(Debug, Clone, clap::Args)]
pub struct TokenArgs {
    /// ADMIN, REGISTRY_OFFICER, JUDICIAL_OFFICER, CENTER_OFFICER, INSTITUTION, SECRETARY,
    /// MEMBER, AUDITOR or SERVICE.
    #[arg(long)]
    pub role: Role,
    /// Who holds the token (goes into the audit log).
    #[arg(long, default_value = "operator")]
    pub subject: String,
    /// For INSTITUTION: the institution's id (the {id} of institutions/{id}).
    #[arg(long)]
    pub institution: Option<String>,
    /// For MEMBER: the working-group member's id.
    #[arg(long)]
    pub member: Option<String>,
    /// For SERVICE: the service's name.
    #[arg(long)]
    pub service: Option<String>,
    /// For JUDICIAL_OFFICER: the prosecutor's office or court served (all if absent).
    #[arg(long)]
    pub authority: Option<String>,
    /// Ed25519 PKCS#8 PEM private key to sign with.
    #[arg(
        long,
        env = "TOKEN_SIGNING_KEY",
        default_value = "data/signing.key.pem"
    )]
    pub key: PathBuf,
    /// How long the token is valid.
    #[arg(long, default_value = "12h")]
    pub ttl: humantime::Duration,
    /// Which service the token is for (`aud`): registry, referral, meeting, or mosharekat
    /// for every service of the suite.
    #[arg(long, default_value = crate::auth::AUDIENCE, value_parser = ["mosharekat", "registry", "referral", "meeting"])]
    pub audience: String,
}

impl TokenArgs {
    pub fn mint(&self) -> anyhow::Result<String> {
        let signer = TokenSigner::from_pem_file(&self.key)?;
        signer.mint(
            self.role,
            &TokenRequest {
                subject: self.subject.clone(),
                institution: self.institution.clone(),
                member: self.member.clone(),
                service: self.service.clone(),
                authority: self.authority.clone(),
                lifetime: Duration::from(self.ttl),
                audience: Some(self.audience.clone()),
            },
        )
    }

    pub fn run(&self) -> anyhow::Result<()> {
        println!("{}", self.mint()?);
        Ok(())
    }
}

/// The subcommands of every service binary.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum ServiceCommand {
    /// Serve gRPC (the default).
    Serve,
    /// Apply database migrations and exit (run as a Kubernetes Job before a rollout).
    Migrate,
    /// Create an Ed25519 key pair for signing tokens.
    Keys(KeysArgs),
    /// Mint a bearer token for a role.
    Token(TokenArgs),
}

/// Runs a service binary's subcommand: `serve` and `migrate` with logging and tracing set
/// up for `service`, and the exporter flushed at the end whatever happened.
pub async fn run_service<S, SF, M, MF>(
    service: &str,
    log_format: crate::telemetry::LogFormat,
    command: Option<ServiceCommand>,
    serve: S,
    migrate: M,
) -> anyhow::Result<()>
where
    S: FnOnce() -> SF,
    SF: std::future::Future<Output = anyhow::Result<()>>,
    M: FnOnce() -> MF,
    MF: std::future::Future<Output = anyhow::Result<()>>,
{
    let command = command.unwrap_or(ServiceCommand::Serve);
    match command {
        ServiceCommand::Keys(k) => return k.run(),
        ServiceCommand::Token(t) => return t.run(),
        ServiceCommand::Serve | ServiceCommand::Migrate => {}
    }
    let telemetry = crate::telemetry::init(service, log_format)?;
    let r = match command {
        ServiceCommand::Migrate => migrate().await,
        _ => serve().await,
    };
    if let Err(e) = &r {
        tracing::error!(error = format!("{e:#}"), "{service} stopped with an error");
    }
    telemetry.shutdown().await;
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        command: ServiceCommand,
    }

    /// `token` writes the key's id in the header and the issuer and audience in the claims.
    #[test]
    fn the_token_command_writes_kid_iss_and_aud() {
        let dir = tempfile::tempdir().unwrap();
        let (private, public) = ensure_keypair(dir.path()).unwrap();
        let key = private.display().to_string();
        let mint = |extra: &[&str]| {
            let mut args = vec!["x", "token", "--role", "ADMIN", "--key", key.as_str()];
            args.extend(extra);
            match Cli::try_parse_from(args).map(|c| c.command) {
                Ok(ServiceCommand::Token(t)) => Ok(t.mint().unwrap()),
                Ok(other) => panic!("{other:?}"),
                Err(e) => Err(e),
            }
        };
        let verifier = crate::auth::TokenVerifier::from_pem_files(&[public]).unwrap();
        let t = mint(&[]).unwrap();
        let header = jsonwebtoken::decode_header(&t).unwrap();
        assert_eq!(header.kid, verifier.key_ids().first().cloned());
        let c = verifier.verify(&t).unwrap();
        assert_eq!(
            (c.iss.as_str(), c.aud.as_str()),
            ("mosharekat", "mosharekat")
        );
        let t = mint(&["--audience", "meeting"]).unwrap();
        let meeting = verifier.clone().for_service("meeting");
        assert_eq!(meeting.verify(&t).unwrap().aud, "meeting");
        assert!(verifier.for_service("registry").verify(&t).is_err());
        assert!(mint(&["--audience", "everyone"]).is_err());
    }
}
