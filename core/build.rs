//! Generates the transaction messages (the log leaves) from proto/gridledger/v1/tx.proto
//! with plain prost: core stays free of any RPC stack but decodes leaves itself.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var_os("PROTOC").is_none() {
        // SAFETY-free: build scripts are single-threaded; the vendored protoc means no apt step.
        unsafe { std::env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?) };
    }
    let proto_dir = std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    )
    .join("../proto");
    let tx = proto_dir.join("gridledger/v1/tx.proto");
    println!("cargo:rerun-if-changed={}", tx.display());
    prost_build::Config::new().compile_protos(&[tx], &[proto_dir])?;
    Ok(())
}
