//! Configuration files under the command line: a TOML file whose keys are the long flag
//! names (`broker = "mqtt://…"`, `label = ["zone=north"]`, `disable-agent = true`) fills
//! what neither a flag nor an environment variable set, so the order is
//! flags > `DROVER_*` environment > file > defaults. Works on any clap command, so the agent
//! and the server share it.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;

use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, Command};
use toml::Spanned;

/// Arguments that choose the file or print the result: not settable from a file.
const NOT_IN_FILES: [&str; 4] = ["config", "print-config", "help", "version"];

/// Line and column (1-based) of byte `offset` in `text`.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.len(), |nl| before.len() - nl - 1)
        + 1;
    (line, column)
}

fn settable_keys(command: &Command) -> Vec<&str> {
    command
        .get_arguments()
        .filter_map(|a| a.get_long())
        .filter(|long| !NOT_IN_FILES.contains(long))
        .collect()
}

/// The command-line arguments a file's `key = value` stands for.
fn value_args(command: &Command, key: &str, value: &toml::Value) -> Result<Vec<OsString>, String> {
    let Some(arg) = command
        .get_arguments()
        .find(|a| a.get_long() == Some(key) && !NOT_IN_FILES.contains(&key))
    else {
        return Err(format!(
            "unknown key \"{key}\" (keys are the long flag names: {})",
            settable_keys(command).join(", ")
        ));
    };
    let flag = format!("--{key}");
    let is_switch = matches!(arg.get_action(), ArgAction::SetTrue | ArgAction::SetFalse);
    let scalar = |v: &toml::Value| -> Result<String, String> {
        match v {
            toml::Value::String(s) => Ok(s.clone()),
            toml::Value::Integer(i) => Ok(i.to_string()),
            toml::Value::Boolean(b) => Ok(b.to_string()),
            other => Err(format!(
                "\"{key}\" takes a string, integer or boolean, not {}",
                other.type_str()
            )),
        }
    };
    match value {
        toml::Value::Boolean(on) if is_switch => {
            Ok(if *on { vec![flag.into()] } else { Vec::new() })
        }
        _ if is_switch => Err(format!("\"{key}\" is true or false")),
        toml::Value::Array(items) => {
            if !matches!(arg.get_action(), ArgAction::Append) {
                return Err(format!("\"{key}\" takes one value, not a list"));
            }
            let mut args = Vec::new();
            for item in items {
                args.push(flag.clone().into());
                args.push(scalar(item)?.into());
            }
            Ok(args)
        }
        single => Ok(vec![flag.into(), scalar(single)?.into()]),
    }
}

/// What a file contributes: arguments to append to the command line, and the keys it set.
#[derive(Debug, Default)]
pub struct FileLayer {
    /// Arguments standing for the file's keys that the command line and environment left
    /// unset.
    pub args: Vec<OsString>,
    /// The keys those arguments come from.
    pub keys: Vec<String>,
}

/// Reads the file at `path` for `command`, whose flags and environment gave `matches`.
/// A missing file is no error unless `required`. Every error names the file, line and
/// column, and the key.
pub fn read_layer(
    command: &Command,
    matches: &ArgMatches,
    path: &Path,
    required: bool,
) -> Result<FileLayer, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
            return Ok(FileLayer::default())
        }
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    layer_from_text(command, matches, &path.display().to_string(), &text)
}

/// [`read_layer`] on text already read.
pub fn layer_from_text(
    command: &Command,
    matches: &ArgMatches,
    name: &str,
    text: &str,
) -> Result<FileLayer, String> {
    let table: BTreeMap<Spanned<String>, Spanned<toml::Value>> =
        toml::from_str(text).map_err(|e| {
            let (line, column) = position(text, e.span().map_or(0, |s| s.start));
            format!("{name}:{line}:{column}: {}", e.message())
        })?;
    let mut layer = FileLayer::default();
    let mut entries: Vec<_> = table.into_iter().collect();
    entries.sort_by_key(|(k, _)| k.span().start);
    for (key, value) in entries {
        let (line, column) = position(text, key.span().start);
        let at = |message: String| format!("{name}:{line}:{column}: {message}");
        let args = value_args(command, key.get_ref(), value.get_ref()).map_err(at)?;
        // Check the value the way the flag would be, to point at the file's line.
        let mut probe = vec![OsString::from(command.get_name())];
        probe.extend(args.iter().cloned());
        if let Err(e) = command.clone().try_get_matches_from(probe) {
            let message = e.to_string();
            let first = message
                .lines()
                .next()
                .unwrap_or("")
                .trim_start_matches("error: ");
            return Err(at(format!("{}: {first}", key.get_ref())));
        }
        let id = command
            .get_arguments()
            .find(|a| a.get_long() == Some(key.get_ref().as_str()))
            .map(|a| a.get_id().as_str().to_string())
            .unwrap_or_default();
        let set_above = matches!(
            matches.value_source(&id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        );
        if !set_above {
            layer.args.extend(args);
            layer.keys.push(key.into_inner());
        }
    }
    Ok(layer)
}

/// The outcome of parsing a command line with its configuration file.
#[derive(Debug)]
pub enum Parsed {
    /// Run with these matches.
    Run(ArgMatches),
    /// `--print-config` was given: print this and exit.
    Print(String),
}

/// Parses `argv` with `root`, layering the configuration file of the section that runs:
/// the root itself, or one of the subcommands named in `sections`. The section must have the
/// arguments `config` (the file) and `print_config`.
pub fn parse(root: Command, argv: Vec<OsString>, sections: &[&str]) -> Result<Parsed, clap::Error> {
    let matches = root.clone().try_get_matches_from(&argv)?;
    let (command, section_matches) = if sections.is_empty() {
        (root.clone(), &matches)
    } else {
        match matches.subcommand() {
            Some((name, sub)) if sections.contains(&name) => match root.find_subcommand(name) {
                Some(command) => (command.clone(), sub),
                None => return Ok(Parsed::Run(matches)),
            },
            _ => return Ok(Parsed::Run(matches)),
        }
    };
    let Some(path) = section_matches
        .get_one::<std::path::PathBuf>("config")
        .cloned()
    else {
        return Ok(Parsed::Run(matches));
    };
    let named = matches!(
        section_matches.value_source("config"),
        Some(ValueSource::CommandLine | ValueSource::EnvVariable)
    );
    let layer = read_layer(&command, section_matches, &path, named).map_err(|message| {
        root.clone()
            .error(clap::error::ErrorKind::ValueValidation, message)
    })?;
    let matches = if layer.args.is_empty() {
        matches
    } else {
        let mut full = argv;
        full.extend(layer.args);
        root.clone().try_get_matches_from(full)?
    };
    let section_matches = match matches.subcommand() {
        Some((_, sub)) if !sections.is_empty() => sub,
        _ => &matches,
    };
    if section_matches.get_flag("print_config") {
        return Ok(Parsed::Print(render(
            &command,
            section_matches,
            &path,
            &layer.keys,
        )));
    }
    Ok(Parsed::Run(matches))
}

fn toml_value(raw: &str) -> String {
    if raw.parse::<i64>().is_ok() || raw == "true" || raw == "false" {
        raw.to_string()
    } else {
        format!("{raw:?}")
    }
}

/// A join token as it may be printed: its id, never its secret (the last part).
fn hide_secret(token: &str) -> String {
    match token.rsplit_once('.') {
        Some((public, _)) => format!("{public}.***"),
        None => "***".to_string(),
    }
}

/// A broker URL as it may be printed: with its password as `***`.
fn hide_password(url: &str) -> String {
    match drover_proto::BrokerAddress::parse(url) {
        Ok(broker) if broker.password.is_some() => broker.to_string(),
        _ => url.to_string(),
    }
}

/// The effective configuration as a file would say it, each key with where it came from.
pub fn render(
    command: &Command,
    matches: &ArgMatches,
    file: &Path,
    file_keys: &[String],
) -> String {
    let mut out = format!(
        "# effective configuration: flags > DROVER_* environment > {} > defaults\n",
        file.display()
    );
    for arg in command.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if NOT_IN_FILES.contains(&long) {
            continue;
        }
        let id = arg.get_id().as_str();
        let source = if file_keys.iter().any(|k| k == long) {
            "file"
        } else {
            match matches.value_source(id) {
                Some(ValueSource::CommandLine) => "flag",
                Some(ValueSource::EnvVariable) => "environment",
                _ => "default",
            }
        };
        let raw: Vec<String> = matches
            .get_raw(id)
            .map(|values| values.map(|v| v.to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        let value = match (arg.get_action(), raw.as_slice()) {
            (ArgAction::Append, values) => format!(
                "[{}]",
                values
                    .iter()
                    .map(|v| toml_value(v))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            (_, [one]) if long == "broker" => toml_value(&hide_password(one)),
            (_, [one]) if long == "token" => toml_value(&hide_secret(one)),
            (_, [one]) => toml_value(one),
            (_, []) => {
                out.push_str(&format!("# {long} is unset\n"));
                continue;
            }
            (_, many) => toml_value(&many.join(",")),
        };
        out.push_str(&format!("{long} = {value}  # {source}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use clap::{Arg, ArgAction, Command};

    use super::*;

    fn command() -> Command {
        Command::new("test")
            .arg(Arg::new("broker").long("broker"))
            .arg(
                Arg::new("interval")
                    .long("interval")
                    .value_parser(clap::value_parser!(u32))
                    .default_value("10"),
            )
            .arg(Arg::new("label").long("label").action(ArgAction::Append))
            .arg(Arg::new("quiet").long("quiet").action(ArgAction::SetTrue))
            .arg(Arg::new("config").long("config"))
    }

    fn layer(text: &str, cli: &[&str]) -> Result<FileLayer, String> {
        let mut argv = vec!["test"];
        argv.extend(cli);
        let matches = command().get_matches_from(argv);
        layer_from_text(&command(), &matches, "agent.toml", text)
    }

    #[test]
    fn file_values_fill_only_what_the_command_line_left_unset() {
        let file = "broker = \"mqtt://file:1883\"\ninterval = 30\nlabel = [\"a=1\", \"b=2\"]\nquiet = true\n";
        let from_file = layer(file, &[]).unwrap();
        assert_eq!(
            from_file.args,
            [
                "--broker",
                "mqtt://file:1883",
                "--interval",
                "30",
                "--label",
                "a=1",
                "--label",
                "b=2",
                "--quiet"
            ]
            .map(OsString::from)
        );
        let flags_win = layer(file, &["--broker", "mqtt://flag:1883", "--interval", "5"]).unwrap();
        assert_eq!(flags_win.keys, ["label", "quiet"]);
    }

    #[test]
    fn errors_name_the_key_and_its_line() {
        let cases = [
            (
                "broker = \"x\"\nbrokr = \"y\"\n",
                "agent.toml:2:1: unknown key \"brokr\"",
            ),
            (
                "interval = \"soon\"\n",
                "agent.toml:1:1: interval: invalid value 'soon'",
            ),
            (
                "\n\nquiet = \"yes\"\n",
                "agent.toml:3:1: \"quiet\" is true or false",
            ),
            (
                "broker = [\"a\", \"b\"]\n",
                "agent.toml:1:1: \"broker\" takes one value",
            ),
            (
                "config = \"/x\"\n",
                "agent.toml:1:1: unknown key \"config\"",
            ),
            ("broker = \n", "agent.toml:1:"),
        ];
        for (text, expected) in cases {
            let error = layer(text, &[]).unwrap_err();
            assert!(error.starts_with(expected), "{text:?}: {error}");
        }
    }

    #[test]
    fn a_missing_file_is_fine_unless_named() {
        let matches = command().get_matches_from(["test"]);
        let path = Path::new("/nonexistent/drover.toml");
        assert!(read_layer(&command(), &matches, path, false)
            .unwrap()
            .args
            .is_empty());
        assert!(read_layer(&command(), &matches, path, true)
            .unwrap_err()
            .contains("/nonexistent/drover.toml"));
    }

    #[test]
    fn a_join_token_is_printed_without_its_secret() {
        assert_eq!(
            hide_secret("drv1.abc.0a0b0c0d.s3cret"),
            "drv1.abc.0a0b0c0d.***"
        );
        assert_eq!(hide_secret("garbage"), "***");
    }

    #[test]
    fn rendering_hides_the_brokers_password() {
        let command = command();
        let matches = command
            .clone()
            .try_get_matches_from(["test", "--broker", "mqtt://u:hunter2@b:1"])
            .unwrap();
        let text = render(&command, &matches, Path::new("/etc/x.toml"), &[]);
        assert!(!text.contains("hunter2"), "{text}");
        assert!(
            text.contains("broker = \"mqtt://u:***@b:1\"  # flag"),
            "{text}"
        );
    }

    #[test]
    fn rendering_shows_values_and_their_sources() {
        let matches =
            command().get_matches_from(["test", "--broker", "mqtt://b:1", "--label", "a=1"]);
        let text = render(
            &command(),
            &matches,
            Path::new("/etc/x.toml"),
            &["label".into()],
        );
        assert!(text.contains("broker = \"mqtt://b:1\"  # flag"), "{text}");
        assert!(text.contains("interval = 10  # default"), "{text}");
        assert!(text.contains("label = [\"a=1\"]  # file"), "{text}");
        assert!(text.contains("quiet = false  # default"), "{text}");
        // What it prints reads back as a configuration file.
        let reparsed: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(reparsed["interval"].as_integer(), Some(10));
    }
}
