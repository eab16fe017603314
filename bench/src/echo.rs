//! The RPC ceiling: a bare tonic unary echo server, no middleware and no database, run as
//! its own process like the services.

use tonic::{Request, Response, Status};

pub mod pb {
    tonic::include_proto!("mosharekat.bench.v1");
}

use pb::echo_service_server::{EchoService, EchoServiceServer};
use pb::{EchoRequest, EchoResponse};

#[derive(Debug, Default)]
struct Echo;

#[tonic::async_trait]
impl EchoService for Echo {
    async fn echo(&self, request: Request<EchoRequest>) -> Result<Response<EchoResponse>, Status> {
        Ok(Response::new(EchoResponse {
            payload: request.into_inner().payload,
        }))
    }
}

/// Serves the echo (and plain health, so it can be waited on) until SIGTERM.
pub async fn serve(listen: &str) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let (_reporter, health) = tonic_health::server::health_reporter();
    tonic::transport::Server::builder()
        .add_service(health)
        .add_service(EchoServiceServer::new(Echo))
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            mosharekat_platform::server::shutdown_signal(),
        )
        .await?;
    Ok(())
}
