//! Prompt answers, gathered before any script runs: `--prompt GEN.NAME=VALUE|@FILE`,
//! `--prompts-file FILE` (YAML `{GEN: {NAME: value}}`), `VARSMITH_PROMPT_<GEN>_<NAME>`, a
//! persisted previous answer, and last the terminal (hidden prompts without echo, asked twice).

use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use zeroize::Zeroizing;

use crate::UsageError;
use crate::workspace::{Generator, PromptType};

/// Answers by prompt name.
pub type Answers = IndexMap<String, Zeroizing<Vec<u8>>>;

/// Where non-interactive answers come from.
#[derive(Default)]
pub struct Sources {
    /// (generator, prompt) -> answer, from `--prompt` and `--prompts-file`.
    given: IndexMap<(String, String), Zeroizing<Vec<u8>>>,
}

impl Sources {
    /// Parses `--prompt` arguments and the optional prompts file.
    pub fn new(args: &[String], file: Option<&Path>) -> Result<Sources, UsageError> {
        let mut given = IndexMap::new();
        if let Some(path) = file {
            let text =
                Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
                    UsageError::new(format!("--prompts-file {}: {e}", path.display()))
                })?);
            let map: IndexMap<String, IndexMap<String, String>> = yaml_serde::from_str(&text)
                .map_err(|_| {
                    UsageError::new(format!(
                        "--prompts-file {}: expected a YAML mapping {{GENERATOR: {{PROMPT: value}}}}",
                        path.display()
                    ))
                })?;
            for (g, prompts) in map {
                for (p, v) in prompts {
                    given.insert((g.clone(), p), Zeroizing::new(v.into_bytes()));
                }
            }
        }
        for arg in args {
            let (key, value) = arg.split_once('=').ok_or_else(|| {
                UsageError::new(format!(
                    "--prompt {}: expected GEN.NAME=VALUE or GEN.NAME=@FILE",
                    arg.split('=').next().unwrap_or("")
                ))
            })?;
            let (g, p) = key
                .split_once('.')
                .ok_or_else(|| UsageError::new(format!("--prompt {key}: expected GEN.NAME=…")))?;
            let bytes = if let Some(f) = value.strip_prefix('@') {
                Zeroizing::new(
                    std::fs::read(PathBuf::from(f))
                        .map_err(|e| UsageError::new(format!("--prompt {key}=@{f}: {e}")))?,
                )
            } else {
                Zeroizing::new(value.as_bytes().to_vec())
            };
            given.insert((g.to_string(), p.to_string()), bytes);
        }
        Ok(Sources { given })
    }

    /// A non-interactive answer for (generator, prompt), if any.
    pub fn lookup(&self, generator: &str, prompt: &str) -> Option<Zeroizing<Vec<u8>>> {
        if let Some(v) = self.given.get(&(generator.to_string(), prompt.to_string())) {
            return Some(v.clone());
        }
        std::env::var_os(env_name(generator, prompt))
            .map(|v| Zeroizing::new(v.into_encoded_bytes()))
    }
}

/// `VARSMITH_PROMPT_<GEN>_<NAME>`, upper-cased, other characters as `_`.
pub fn env_name(generator: &str, prompt: &str) -> String {
    let clean = |s: &str| {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect::<String>()
    };
    format!("VARSMITH_PROMPT_{}_{}", clean(generator), clean(prompt))
}

/// Asks one prompt on the terminal (`/dev/tty`). `None` when there is no terminal.
pub fn ask_terminal(who: &str, name: &str, g: &Generator) -> Option<Result<Answers, String>> {
    let p = g.prompts.get(name)?;
    let mut tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .ok()?;
    let question = format!("{who}: {}", p.description);
    let answer: Result<Zeroizing<Vec<u8>>, String> = match p.kind {
        PromptType::Hidden => (|| {
            let a = Zeroizing::new(
                rpassword::prompt_password(format!("{question}: ")).map_err(|e| e.to_string())?,
            );
            let b = Zeroizing::new(
                rpassword::prompt_password(format!("{question} (again): "))
                    .map_err(|e| e.to_string())?,
            );
            if *a != *b {
                return Err(format!("{who}: the two answers to {name} differ"));
            }
            Ok(Zeroizing::new(a.as_bytes().to_vec()))
        })(),
        PromptType::Line => (|| {
            let _ = write!(tty, "{question}: ");
            let mut line = Zeroizing::new(String::new());
            std::io::BufReader::new(&mut tty)
                .read_line(&mut line)
                .map_err(|e| e.to_string())?;
            Ok(Zeroizing::new(
                line.trim_end_matches(['\n', '\r']).as_bytes().to_vec(),
            ))
        })(),
        PromptType::Multiline | PromptType::MultilineHidden => (|| {
            let _ = writeln!(tty, "{question} (end with Ctrl-D):");
            let mut buf = Zeroizing::new(Vec::new());
            tty.read_to_end(&mut buf).map_err(|e| e.to_string())?;
            Ok(buf)
        })(),
    };
    Some(answer.map(|a| {
        let mut m = IndexMap::new();
        m.insert(name.to_string(), a);
        m
    }))
}
