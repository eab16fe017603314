//! Compiles `proto/` with protox (pure Rust: no system `protoc`) and tonic's generator,
//! and writes the encoded descriptor set that reflection serves.

use std::path::PathBuf;

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let files = [
        "mosharekat/common/v1/activity_area.proto",
        "mosharekat/common/v1/audit.proto",
        "mosharekat/common/v1/deadline.proto",
        "mosharekat/common/v1/notification.proto",
        "mosharekat/common/v1/party.proto",
        "mosharekat/common/v1/stalled_events.proto",
        "mosharekat/registry/v1/registry.proto",
        "mosharekat/registry/v1/calendar.proto",
        "mosharekat/registry/v1/public_record.proto",
        "mosharekat/referral/v1/referral.proto",
        "mosharekat/meeting/v1/meeting.proto",
        "mosharekat/meeting/v1/public_record.proto",
    ];
    let fds = protox::compile(files, [&root])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("mosharekat_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // prost's codec, naming the field of a request that does not decode.
        .codec_path("crate::codec::Codec")
        // These hold national codes: their Debug is written by hand, masked.
        .skip_debug([
            "mosharekat.registry.v1.Representative",
            "mosharekat.common.v1.Party",
            "mosharekat.meeting.v1.Member",
        ])
        .compile_fds(fds)?;
    println!("cargo:rerun-if-changed={}", root.display());
    Ok(())
}
