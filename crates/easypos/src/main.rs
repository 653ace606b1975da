//! The `easypos` binary: parses the command line and wires the library crates together.
//! It holds no domain logic of its own.

mod tools;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "easypos", version, about = "Open-source card-present payment platform")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Calculators for payments engineers (PIN blocks, DUKPT, MACs, ISO 8583, TLV, QR, ...).
    Tools(tools::ToolsArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Tools(args) => tools::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
