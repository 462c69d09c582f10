//! Generates the daojia.v1 and EventStoreDB-protocol Rust code and its file descriptor set from `proto/` with protox,
//! so the build needs no system `protoc`.

use std::error::Error;
use std::path::PathBuf;

/// The daojia.v1 files compiled into this crate, relative to the `proto/` root.
const PROTOS: &[&str] = &[
    "daojia/v1/meta.proto",
    "daojia/v1/orders.proto",
    "daojia/v1/queries.proto",
    "daojia/v1/admin.proto",
    "daojia/v1/catalog.proto",
    // The EventStoreDB/KurrentDB protocol subset (packages `event_store.client.*`).
    "esdb/shared.proto",
    "esdb/status.proto",
    "esdb/streams.proto",
    "esdb/serverfeatures.proto",
    "esdb/gossip.proto",
    "esdb/persistent.proto",
];

fn main() -> Result<(), Box<dyn Error>> {
    let manifest_dir =
        PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").ok_or("no CARGO_MANIFEST_DIR")?);
    let proto_root = manifest_dir.join("../../proto");
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").ok_or("no OUT_DIR")?);

    let mut compiler = protox::Compiler::new([&proto_root])?;
    compiler.include_imports(true).include_source_info(true);
    compiler.open_files(PROTOS)?;

    // Reflection serves this set; it keeps the comments (source info) for grpcurl describe.
    std::fs::write(
        out_dir.join("daojia_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .build_transport(false)
        // prost's codec, but undecodable requests answer INVALID_ARGUMENT (src/codec.rs).
        .codec_path("crate::codec::Codec")
        // Event payloads stay shared slices of the records read, not copies.
        .bytes(".event_store")
        .compile_fds(compiler.file_descriptor_set())?;

    println!(
        "cargo:rerun-if-changed={}",
        proto_root.join("daojia").display()
    );
    println!(
        "cargo:rerun-if-changed={}",
        proto_root.join("esdb").display()
    );
    Ok(())
}
