//! `gridledger`: parses arguments and calls into the library.

use clap::Parser as _;

#[tokio::main]
async fn main() {
    let cli = gridledger_client::cli::Cli::parse();
    std::process::exit(gridledger_client::cli::run(cli).await);
}
