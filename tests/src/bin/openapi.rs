//! `make openapi`: writes the API document the code derives to
//! `functions/admin-api/openapi.json` (see `integration_tests::openapi`).

use std::path::Path;

fn main() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let path = root.join(integration_tests::openapi::DOCUMENT_PATH);
    std::fs::write(&path, integration_tests::openapi::text())?;
    println!("wrote {}", integration_tests::openapi::DOCUMENT_PATH);
    Ok(())
}
