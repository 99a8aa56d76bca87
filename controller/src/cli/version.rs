//! `drover version`: the client's version, then the server's, as `kubectl version` prints
//! them.

use super::Client;

/// `drover version [--client]`. Like kubectl, a server that cannot be reached is an error
/// after the client's version is printed.
pub fn version(
    connect: impl FnOnce() -> anyhow::Result<Client>,
    client_only: bool,
) -> anyhow::Result<()> {
    println!("Client Version: v{}", env!("CARGO_PKG_VERSION"));
    if client_only {
        return Ok(());
    }
    let info = connect()?.get("/version", &[])?;
    let server = info["gitVersion"].as_str().unwrap_or("unknown");
    println!("Server Version: {server}");
    Ok(())
}
