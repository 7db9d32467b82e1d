//! Compiles `liaison/v1/*.proto` with protox (pure Rust, no `protoc`), writes the
//! descriptor set for run-time reflection, and generates the prost types.
use std::{env, error::Error, fs, path::PathBuf};

const FILES: &[&str] = &[
    "liaison/v1/labels.proto",
    "liaison/v1/bodies.proto",
    "liaison/v1/cases.proto",
    "liaison/v1/envelope.proto",
    "liaison/v1/audit.proto",
    "liaison/v1/store.proto",
];

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed=liaison");
    let mut compiler = protox::Compiler::new(["."])?;
    compiler.include_imports(true).include_source_info(true);
    compiler.open_files(FILES)?;
    let out = PathBuf::from(env::var("OUT_DIR")?);
    // Encoded from protox's own pool: unlike prost-types' structs, it keeps the
    // custom `(liaison.v1.label)` field options that redaction reads.
    fs::write(
        out.join("liaison_v1.descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;
    prost_build::Config::new()
        // Ledger entries are read by the million: their byte fields borrow
        // from the received message instead of being copied out of it.
        .bytes([".liaison.v1.LedgerEntry"])
        .compile_fds(compiler.file_descriptor_set())?;
    Ok(())
}
