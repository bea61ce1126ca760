//! gridledger-node: parses arguments, sets up logging, and calls into the library.

use clap::Parser as _;

#[tokio::main]
async fn main() {
    let cli = gridledger_node::cli::Cli::parse();
    gridledger_node::cli::init_tracing(cli.log_json);
    match gridledger_node::cli::run(cli).await {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
    }
}
