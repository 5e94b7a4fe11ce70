//! `sessionlake-ballista`: runs SQL on a Ballista cluster, the way `sessionlake --cluster` will.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use datafusion::arrow::util::pretty::pretty_format_batches;
use sessionlake_ballista::sql_client::{register_lake, run_script};

/// Run sessionlake SQL on a Ballista cluster.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The scheduler, as df://HOST:PORT.
    #[arg(long, value_name = "df://HOST:PORT")]
    cluster: String,
    /// A lake directory to register as a table, as NAME=DIR (repeatable). Every executor must
    /// see DIR at the same path.
    #[arg(long, value_name = "NAME=DIR")]
    lake: Vec<String>,
    /// SQL to run (repeatable, before any -f).
    #[arg(short = 'c', long = "command", value_name = "SQL")]
    commands: Vec<String>,
    /// A file of SQL to run (repeatable).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    files: Vec<PathBuf>,
    /// How results are printed.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Csv,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("Error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let ctx = sessionlake_ballista::ballista_context(&args.cluster)
        .await
        .map_err(|e| e.strip_backtrace())?;
    for lake in &args.lake {
        let Some((name, dir)) = lake.split_once('=') else {
            return Err(format!("--lake: expected NAME=DIR, found '{lake}'"));
        };
        register_lake(&ctx, name, &PathBuf::from(dir))
            .await
            .map_err(|e| e.strip_backtrace())?;
    }
    let mut scripts = args.commands.clone();
    for file in &args.files {
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("cannot read -f {}: {e}", file.display()))?;
        scripts.push(text);
    }
    if scripts.is_empty() {
        return Err("nothing to run: give SQL with -c \"...\" or -f FILE".to_string());
    }
    for script in scripts {
        let results = run_script(&ctx, &script)
            .await
            .map_err(|e| e.strip_backtrace())?;
        for (schema, batches) in results {
            match args.format {
                Format::Table => {
                    let table = pretty_format_batches(&batches).map_err(|e| e.to_string())?;
                    println!("{table}");
                }
                Format::Csv => print_csv(&schema, &batches)?,
            }
        }
    }
    Ok(())
}

/// Header and rows, values as Arrow displays them, quoted when they need it.
fn print_csv(
    schema: &datafusion::arrow::datatypes::Schema,
    batches: &[datafusion::arrow::array::RecordBatch],
) -> Result<(), String> {
    use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
    let quote = |s: &str| {
        if s.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    };
    let header: Vec<String> = schema.fields().iter().map(|f| quote(f.name())).collect();
    println!("{}", header.join(","));
    let options = FormatOptions::default();
    for batch in batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        for row in 0..batch.num_rows() {
            let cells: Vec<String> = formatters
                .iter()
                .map(|f| quote(&f.value(row).to_string()))
                .collect();
            println!("{}", cells.join(","));
        }
    }
    Ok(())
}
