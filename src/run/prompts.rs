//! Prompt answers, gathered before any script runs: `--prompt GEN.NAME=VALUE|@FILE`,
//! `--prompts-file FILE` (YAML `{GEN: {NAME: value}}`), `VARSMITH_PROMPT_<GEN>_<NAME>`, a
//! persisted previous answer, and last the terminal (hidden prompts without echo, asked twice).

use std::io::Write;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use zeroize::Zeroizing;

use crate::secret::SecretBytes;
use crate::tty::{NoEcho, ask_hidden_confirmed, open_tty, read_all, read_line, shown};

use crate::UsageError;
use crate::workspace::{Generator, PromptType};

/// Answers by prompt name.
pub(crate) type Answers = crate::secret::Files;

/// Where non-interactive answers come from.
#[derive(Default)]
pub(crate) struct Sources {
    /// (generator, prompt) -> answer, from `--prompt` and `--prompts-file`.
    given: IndexMap<(String, String), SecretBytes>,
    /// (generator, prompt) -> where it was given (`--prompt g.p`, `--prompts-file F: g.p`).
    origins: IndexMap<(String, String), String>,
}

impl Sources {
    /// Parses `--prompt` arguments and the optional prompts file.
    pub(crate) fn new(args: &[String], file: Option<&Path>) -> Result<Sources, UsageError> {
        let mut given = IndexMap::new();
        let mut origins = IndexMap::new();
        if let Some(path) = file {
            let text =
                Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
                    UsageError::new(format!("--prompts-file {}: {e}", path.display()))
                })?);
            crate::workspace::bounds::check_yaml(&text)
                .map_err(|e| UsageError::new(format!("--prompts-file {}: {e}", path.display())))?;
            let map: IndexMap<String, IndexMap<String, String>> = yaml_serde::from_str(&text)
                .map_err(|_| {
                    UsageError::new(format!(
                        "--prompts-file {}: expected a YAML mapping {{GENERATOR: {{PROMPT: value}}}}",
                        path.display()
                    ))
                })?;
            for (g, prompts) in map {
                for (p, v) in prompts {
                    let at = format!("--prompts-file {}: {g}.{p}", path.display());
                    origins.insert((g.clone(), p.clone()), at);
                    given.insert((g.clone(), p), SecretBytes::new(v.into_bytes()));
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
            // Generator names may hold dots (`wifi.home`): GEN/NAME, else split at the last dot.
            let (g, p) = key
                .split_once('/')
                .or_else(|| key.rsplit_once('.'))
                .ok_or_else(|| {
                    UsageError::new(format!("--prompt {key}: expected GEN.NAME=… or GEN/NAME=…"))
                })?;
            let bytes = if let Some(f) = value.strip_prefix('@') {
                SecretBytes::new(
                    std::fs::read(PathBuf::from(f))
                        .map_err(|e| UsageError::new(format!("--prompt {key}=@{f}: {e}")))?,
                )
            } else {
                SecretBytes::copy_from(value.as_bytes())
            };
            origins.insert((g.to_string(), p.to_string()), format!("--prompt {key}"));
            given.insert((g.to_string(), p.to_string()), bytes);
        }
        Ok(Sources { given, origins })
    }

    /// Every (generator, prompt) given on the command line or in the prompts file, with
    /// where it was given (for errors about entries that name no prompt).
    pub(crate) fn given(&self) -> impl Iterator<Item = (&str, &str, &str)> {
        self.origins
            .iter()
            .map(|((g, p), at)| (g.as_str(), p.as_str(), at.as_str()))
    }

    /// Where the answer for (generator, prompt) was given (`--prompt G.P`, the prompts file),
    /// `None` for the environment.
    pub(crate) fn origin(&self, generator: &str, prompt: &str) -> Option<String> {
        self.origins
            .get(&(generator.to_string(), prompt.to_string()))
            .cloned()
    }

    /// A non-interactive answer for (generator, prompt), if any.
    pub(crate) fn lookup(&self, generator: &str, prompt: &str) -> Option<SecretBytes> {
        if let Some(v) = self.given.get(&(generator.to_string(), prompt.to_string())) {
            return Some(v.clone());
        }
        std::env::var_os(env_name(generator, prompt))
            .map(|v| SecretBytes::new(v.into_encoded_bytes()))
    }
}

/// `VARSMITH_PROMPT_<GEN>_<NAME>`, upper-cased, other characters as `_`.
pub(crate) fn env_name(generator: &str, prompt: &str) -> String {
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

/// The question for prompt `p`: `WHO: [GROUP] LABEL: DESCRIPTION (HELPER TEXT)`, with the
/// parts clan's `display` does not set left out.
fn question(who: &str, p: &crate::workspace::Prompt) -> String {
    let mut q = format!("{who}: ");
    if let Some(d) = &p.display {
        if let Some(g) = &d.group {
            q.push_str(&format!("[{g}] "));
        }
        if let Some(l) = d.label.as_ref().filter(|l| **l != p.description) {
            q.push_str(&format!("{l}: "));
        }
    }
    q.push_str(&p.description);
    if let Some(h) = p.display.as_ref().and_then(|d| d.helper_text.as_ref()) {
        q.push_str(&format!(" ({h})"));
    }
    q
}

/// Whether an empty answer to `p` is refused: clan's `display.required` (true unless set
/// false, when `display` is given; a prompt without `display` accepts an empty answer).
pub(crate) fn required(p: &crate::workspace::Prompt) -> bool {
    p.display.as_ref().is_some_and(|d| d.required)
}

/// Asks one prompt on the terminal (`/dev/tty`). `None` when there is no terminal. Hidden
/// prompts (`hidden`, `multiline-hidden`) are read with echo off; `hidden` is asked twice
/// (again while the answers differ, see `tty::ask_hidden_confirmed`).
pub(crate) fn ask_terminal(
    who: &str,
    name: &str,
    g: &Generator,
) -> Option<Result<Answers, String>> {
    let p = g.prompts.get(name)?;
    let mut tty = open_tty()?;
    // Escaping is idempotent (its output holds no control), so ask_hidden_confirmed may redo it.
    let question = shown(&question(who, p));
    let ask = |tty: &mut std::fs::File| -> Result<SecretBytes, String> {
        match p.kind {
            PromptType::Line => {
                let _ = write!(tty, "{question}: ");
                read_line(tty)
            }
            PromptType::Hidden => ask_hidden_confirmed(tty, who, name, &question),
            PromptType::Multiline => {
                let _ = writeln!(tty, "{question} (end with Ctrl-D):");
                read_all(tty)
            }
            PromptType::MultilineHidden => {
                let _no_echo = NoEcho::new(tty).map_err(|e| e.to_string())?;
                let _ = writeln!(tty, "{question} (hidden; end with Ctrl-D):");
                let a = read_all(tty);
                let _ = writeln!(tty);
                a
            }
        }
    };
    // A required prompt (`display.required`) is asked again after an empty answer, at most
    // HIDDEN_TRIES times in all.
    let answer = (|| -> Result<SecretBytes, String> {
        for left in (0..crate::tty::HIDDEN_TRIES).rev() {
            let a = ask(&mut tty)?;
            if !required(p) || !a.is_empty() {
                return Ok(a);
            }
            if left > 0 {
                let _ = writeln!(tty, "an answer is required ({left} tries left)");
            }
        }
        Err(format!(
            "{who}: prompt {name} is required (display.required) and the answer was empty {} times",
            crate::tty::HIDDEN_TRIES
        ))
    })();
    Some(answer.map(|a| {
        let mut m = IndexMap::new();
        m.insert(name.to_string(), a);
        m
    }))
}
