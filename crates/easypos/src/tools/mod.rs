//! `easypos tools …`: command-line calculators for payments engineers.
//!
//! Every tool prints a human-readable report by default and exactly one JSON object with
//! `--json`; on bad input it fails with a message that names the offending argument (and never
//! echoes key material, PINs or card numbers back). Each tool family lives in its own module
//! and only builds a [`Report`]; rendering is done once, here.

mod codec;
mod crypto;

use clap::{Args, Subcommand};
use serde_json::Value;

#[derive(Debug, Args)]
pub struct ToolsArgs {
    /// Print a single JSON object instead of the human-readable report.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    tool: Tool,
}

#[derive(Debug, Subcommand)]
enum Tool {
    #[command(flatten)]
    Crypto(crypto::CryptoTool),
    #[command(flatten)]
    Codec(codec::CodecTool),
}

/// An ordered list of named results, rendered as `name: value` lines or as one JSON object.
#[derive(Debug, Default)]
pub struct Report {
    fields: Vec<(String, Value)>,
}

impl Report {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a field; builder style so tools read as a list of results.
    pub fn field(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.fields.push((name.to_owned(), value.into()));
        self
    }

    fn to_json(&self) -> Value {
        Value::Object(self.fields.iter().cloned().collect())
    }

    fn to_text(&self) -> String {
        let width = self
            .fields
            .iter()
            .map(|(name, _)| name.len())
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        for (name, value) in &self.fields {
            let shown = match value {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            out.push_str(&format!("{name:<width$}  {shown}\n"));
        }
        out
    }
}

pub fn run(args: ToolsArgs) -> anyhow::Result<()> {
    let report = match args.tool {
        Tool::Crypto(tool) => crypto::run(tool)?,
        Tool::Codec(tool) => codec::run(tool)?,
    };
    if args.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    Ok(())
}

/// Decodes a hex argument, naming the argument in the error (but not echoing its value,
/// which may be key material).
pub fn hex_arg(name: &str, value: &str) -> anyhow::Result<Vec<u8>> {
    if !value.len().is_multiple_of(2) {
        anyhow::bail!(
            "--{name}: odd number of hex digits ({}); hex needs two digits per byte",
            value.len()
        );
    }
    hex::decode(value)
        .map_err(|_| anyhow::anyhow!("--{name}: not hexadecimal (use digits 0-9 and A-F)"))
}
