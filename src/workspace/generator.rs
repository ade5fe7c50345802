//! Generator definitions (`generators/<name>.yaml`): parsing, defaults and per-file checks.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::names::check_component;

/// When a secret is needed on the host (clan's `neededFor`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NeededFor {
    /// Before disks are partitioned (disk encryption keys).
    Partitioning,
    /// During activation.
    Activation,
    /// When users are created (password hashes).
    Users,
    /// When services start (the default).
    Services,
}

/// How a prompt is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PromptType {
    /// One visible line.
    Line,
    /// One hidden line, asked twice.
    Hidden,
    /// Several visible lines, until end of input.
    Multiline,
    /// Several hidden lines, until end of input.
    MultilineHidden,
}

/// How a prompt is presented (clan's `display`): all optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Display {
    /// A heading the prompt is grouped under (shown before the label).
    #[serde(default)]
    pub group: Option<String>,
    /// A short label shown instead of the prompt's name.
    #[serde(default)]
    pub label: Option<String>,
    /// A hint shown under the question.
    #[serde(default)]
    pub helper_text: Option<String>,
    /// Whether an empty answer is refused (clan's default: true).
    #[serde(default = "yes")]
    pub required: bool,
}

fn yes() -> bool {
    true
}

/// One prompt of a generator.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Prompt {
    /// How it is asked.
    pub kind: PromptType,
    /// The question shown to the user.
    pub description: String,
    /// Store the answer as a secret output of the same name (clan: an implicit file, secret
    /// and deployed by default, overridable like any file) and reuse it without asking again.
    /// The answer is placed at `$out/<name>` before the script runs; the script may replace it.
    pub persist: bool,
    /// Presentation hints (`display`); `None` when not given.
    pub display: Option<Display>,
}

/// One output file of a generator.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileSpec {
    /// Encrypted into the sops file (true) or stored as a public fact (false).
    pub secret: bool,
    /// Owner on the host.
    pub owner: String,
    /// Group on the host.
    pub group: String,
    /// Mode on the host (e.g. 0o400).
    pub mode: u32,
    /// Deployed to the host (false: encrypted to admins only).
    pub deploy: bool,
    /// When the host needs it.
    pub needed_for: NeededFor,
}

/// A validated generator definition.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Generator {
    /// The generator's name (the file stem).
    pub name: String,
    /// Where it was defined (a path, or `bundled:<name>`).
    #[serde(skip)]
    pub source: PathBuf,
    /// Human description.
    pub description: String,
    /// One value set for every machine that lists it.
    pub share: bool,
    /// Generators whose outputs appear at `$in/<dep>/<file>`.
    pub dependencies: Vec<String>,
    /// Commands the script needs (checked before anything runs).
    pub runtime_inputs: Vec<String>,
    /// Prompts asked before any script runs.
    pub prompts: IndexMap<String, Prompt>,
    /// Declared output files.
    pub files: IndexMap<String, FileSpec>,
    /// Free-form validation value; any change regenerates.
    pub validation: serde_json::Value,
    /// The bash script.
    pub script: String,
    /// Nix generators: the runtime inputs' store paths; the script's PATH is exactly their
    /// `bin/` directories (`runtime_inputs` then holds their names, for messages).
    #[serde(skip)]
    pub pinned: Option<Vec<super::nix::StoreInput>>,
    /// Nix generators: derivations the script text refers to, realised before it runs (the
    /// sandbox binds the whole store); empty for YAML definitions.
    #[serde(skip)]
    pub script_refs: Vec<super::nix::StoreInput>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGenerator {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    share: bool,
    #[serde(default)]
    dependencies: Vec<String>,
    #[serde(default)]
    runtime_inputs: Vec<String>,
    #[serde(default)]
    prompts: IndexMap<String, Option<RawPrompt>>,
    #[serde(default)]
    files: IndexMap<String, Option<RawFile>>,
    #[serde(default)]
    validation: Option<serde_json::Value>,
    #[serde(default)]
    script: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPrompt {
    #[serde(rename = "type", default)]
    pub(crate) kind: Option<PromptType>,
    #[serde(default)]
    pub(crate) description: Option<String>,
    #[serde(default)]
    pub(crate) persist: bool,
    #[serde(default)]
    pub(crate) display: Option<Display>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFile {
    #[serde(default)]
    pub(crate) secret: Option<bool>,
    #[serde(default)]
    pub(crate) owner: Option<String>,
    #[serde(default)]
    pub(crate) group: Option<String>,
    #[serde(default)]
    pub(crate) mode: Option<serde_json::Value>,
    #[serde(default)]
    pub(crate) deploy: Option<bool>,
    #[serde(default)]
    pub(crate) needed_for: Option<NeededFor>,
}

/// Parses an octal mode string such as `"0400"` or `"640"`.
pub(crate) fn parse_mode(v: &serde_json::Value) -> Result<u32, String> {
    let s = match v {
        serde_json::Value::String(s) => s.as_str(),
        other => {
            return Err(format!(
                "mode {other} must be a quoted octal string such as \"0400\""
            ));
        }
    };
    let digits = s.strip_prefix("0o").unwrap_or(s);
    if !(3..=4).contains(&digits.len()) || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return Err(format!(
            "bad mode {s:?}: expected 3 or 4 octal digits such as \"0400\""
        ));
    }
    let m = u32::from_str_radix(digits, 8).map_err(|e| format!("bad mode {s:?}: {e}"))?;
    if m > 0o777 {
        return Err(format!(
            "bad mode {s:?}: setuid, setgid and sticky bits are not allowed"
        ));
    }
    Ok(m)
}

/// Parses and checks one definition file. Errors are messages without the path (the caller
/// adds it).
pub fn parse_generator(name: &str, source: &Path, text: &str) -> Result<Generator, String> {
    check_component(name).map_err(|e| format!("generator name: {e}"))?;
    super::bounds::check_yaml(text)?;
    let raw: RawGenerator =
        yaml_serde::from_str(text).map_err(|e| super::quote::parser_message(&e.to_string()))?;
    let mut files = parse_files(name, raw.files)?;
    let prompts = parse_prompts(name, raw.prompts, &files)?;
    add_prompt_files(&prompts, &mut files);
    for dep in &raw.dependencies {
        check_component(dep).map_err(|e| format!("generator {name}: dependency {e}"))?;
        if dep == name {
            return Err(format!(
                "generator {name} depends on itself: {name} -> {name}"
            ));
        }
    }
    for cmd in &raw.runtime_inputs {
        if cmd.is_empty() || cmd.contains('/') && !cmd.starts_with('/') {
            return Err(format!(
                "generator {name}: bad runtime input \"{}\" (a command name or an absolute path)",
                super::quote::excerpt(cmd)
            ));
        }
    }
    if files.is_empty() {
        return Err(format!("generator {name}: declares no files"));
    }
    Ok(Generator {
        name: name.to_string(),
        source: source.to_path_buf(),
        description: raw.description.unwrap_or_default(),
        share: raw.share,
        dependencies: raw.dependencies,
        runtime_inputs: raw.runtime_inputs,
        prompts,
        files,
        validation: raw.validation.unwrap_or(serde_json::Value::Null),
        script: raw.script,
        pinned: None,
        script_refs: Vec::new(),
    })
}

/// A persisted prompt's answer is a file of the same name (clan: `files.<prompt> = { }`, so
/// secret and deployed unless the definition declares the file itself).
pub(crate) fn add_prompt_files(
    prompts: &IndexMap<String, Prompt>,
    files: &mut IndexMap<String, FileSpec>,
) {
    for (pname, p) in prompts {
        if p.persist && !files.contains_key(pname) {
            files.insert(pname.clone(), default_file(true));
        }
    }
}

/// A file with clan's defaults: owner and group root, mode 0400, deployed, needed for
/// services.
pub(crate) fn default_file(secret: bool) -> FileSpec {
    FileSpec {
        secret,
        owner: "root".into(),
        group: "root".into(),
        mode: 0o400,
        deploy: true,
        needed_for: NeededFor::Services,
    }
}

/// The `files:` map with defaults applied and names checked.
pub(crate) fn parse_files(
    name: &str,
    raw: IndexMap<String, Option<RawFile>>,
) -> Result<IndexMap<String, FileSpec>, String> {
    let mut files = IndexMap::new();
    for (fname, spec) in raw {
        check_component(&fname).map_err(|e| format!("generator {name}: file name {e}"))?;
        let spec = spec.unwrap_or_default();
        let secret = spec.secret.unwrap_or(true);
        if secret && fname == "sops" {
            return Err(format!(
                "generator {name}: secret file name \"sops\" is reserved for sops metadata"
            ));
        }
        if secret && fname.ends_with("_unencrypted") {
            return Err(format!(
                "generator {name}: secret file {fname:?} ends in \"_unencrypted\", which sops would store in plaintext"
            ));
        }
        let d = default_file(secret);
        let mode = match &spec.mode {
            Some(v) => parse_mode(v).map_err(|e| format!("generator {name}: file {fname}: {e}"))?,
            None => d.mode,
        };
        let spec = FileSpec {
            secret,
            owner: spec.owner.unwrap_or(d.owner),
            group: spec.group.unwrap_or(d.group),
            mode,
            deploy: spec.deploy.unwrap_or(d.deploy),
            needed_for: spec.needed_for.unwrap_or(d.needed_for),
        };
        files.insert(fname, spec);
    }
    Ok(files)
}

/// The `prompts:` map with defaults applied and names checked.
pub(crate) fn parse_prompts(
    name: &str,
    raw: IndexMap<String, Option<RawPrompt>>,
    files: &IndexMap<String, FileSpec>,
) -> Result<IndexMap<String, Prompt>, String> {
    let mut prompts = IndexMap::new();
    for (pname, p) in raw {
        check_component(&pname).map_err(|e| format!("generator {name}: prompt name {e}"))?;
        let (kind, description, persist, display) = match p {
            Some(p) => (p.kind, p.description, p.persist, p.display),
            None => (None, None, false, None),
        };
        if persist && files.get(&pname).is_some_and(|f| !f.secret) {
            return Err(format!(
                "generator {name}: persisted prompt {pname:?} clashes with the public file of the same name"
            ));
        }
        let prompt = Prompt {
            kind: kind.unwrap_or(PromptType::Line),
            description: description.unwrap_or_else(|| pname.clone()),
            persist,
            display,
        };
        prompts.insert(pname, prompt);
    }
    Ok(prompts)
}

impl Generator {
    /// Hash (sha256, hex) of what makes outputs stale when it changes: the canonical JSON
    /// (`canonical_json`, i.e. what Nix's `builtins.toJSON` prints) of
    /// `{ dependencies; files.<f> = { deploy; secret; }; script; share; validation; }`.
    /// Owner, group, mode, neededFor, prompts and runtime inputs are deliberately not part of
    /// it (changing a mode must not rotate a key). The Nix module computes the same value
    /// (`nix/fingerprint.nix`); dependencies' fingerprints are mixed in by the caller.
    pub fn own_fingerprint(&self) -> String {
        let v = serde_json::json!({
            "dependencies": self.dependencies,
            "files": self.file_shape(),
            "script": self.script,
            "share": self.share,
            "validation": self.validation,
        });
        hex::encode(Sha256::digest(canonical_json(&v).as_bytes()))
    }

    /// clan's `validationHash`: sha256 hex of the canonical JSON of `validation` with every
    /// store path masked ([`mask_store_paths`]); `None` when `validation` is null. A change
    /// makes the outputs stale. Nix: `fingerprint.nix` `validationHash`.
    pub(crate) fn validation_hash(&self) -> Option<String> {
        if self.validation.is_null() {
            return None;
        }
        let text = mask_store_paths(&canonical_json(&self.validation));
        Some(hex::encode(Sha256::digest(text.as_bytes())))
    }

    /// sha256 hex of the canonical JSON of `{ <file> = { deploy; secret; }; }`: the set of
    /// files and where each goes. A change makes the outputs stale. Nix: `shapeHash`.
    pub(crate) fn shape_hash(&self) -> String {
        let text = canonical_json(&serde_json::Value::Object(self.file_shape()));
        hex::encode(Sha256::digest(text.as_bytes()))
    }

    /// `{ <file> = { deploy; secret; }; }`: the part of the files that decides staleness.
    fn file_shape(&self) -> serde_json::Map<String, serde_json::Value> {
        self.files
            .iter()
            .map(|(name, f)| {
                (
                    name.clone(),
                    serde_json::json!({ "deploy": f.deploy, "secret": f.secret }),
                )
            })
            .collect()
    }

    /// sha256 hex of the script text with every store path masked. A change is only a
    /// notice (clan does not regenerate on a script edit). Nix: `scriptHash`.
    pub(crate) fn script_hash(&self) -> String {
        hex::encode(Sha256::digest(mask_store_paths(&self.script).as_bytes()))
    }

    /// Where the definition comes from, relative to the workspace when it is a file in it
    /// (else `bundled:<name>` or `flake:<attribute>`).
    pub(crate) fn shown_source(&self, root: &Path) -> String {
        self.source
            .strip_prefix(root)
            .unwrap_or(&self.source)
            .display()
            .to_string()
    }

    /// Does the generator have any secret output for the host (deploy: true)?
    pub(crate) fn has_deployed_secrets(&self) -> bool {
        self.files.values().any(|f| f.secret && f.deploy)
    }

    /// Is everything but [`Generator::source`] equal to `other`'s (the same definition read
    /// from two places, such as two configurations importing one module)?
    pub(crate) fn same_but_source(&self, other: &Generator) -> bool {
        let Generator {
            name,
            source: _,
            description,
            share,
            dependencies,
            runtime_inputs,
            prompts,
            files,
            validation,
            script,
            pinned,
            script_refs,
        } = self;
        *name == other.name
            && *script == other.script
            && *share == other.share
            && *dependencies == other.dependencies
            && *files == other.files
            && *validation == other.validation
            && *prompts == other.prompts
            && *runtime_inputs == other.runtime_inputs
            && *pinned == other.pinned
            && *script_refs == other.script_refs
            && *description == other.description
    }

    /// Is the definition (as far as outputs go) the same as `other`'s? Owner, group, mode and
    /// neededFor may differ: they are how each machine deploys the one shared value (a darwin
    /// machine's group defaults to `wheel`, a NixOS one's to `root`).
    pub(crate) fn same_definition(&self, other: &Generator) -> bool {
        self.own_fingerprint() == other.own_fingerprint()
            && self.prompts == other.prompts
            && self.runtime_inputs == other.runtime_inputs
    }
}

/// `s` with every store path (`/nix/store/<32 chars of [0-9a-z]>-<name chars>`) replaced by
/// `/nix/store/*`, so that a nixpkgs bump changes no hash. Nix does the same with
/// `builtins.split "/nix/store/[0-9a-z]{32}-[A-Za-z0-9+._?=-]*"` (`fingerprint.nix`).
pub(crate) fn mask_store_paths(s: &str) -> String {
    const PREFIX: &str = "/nix/store/";
    let name_char = |b: u8| b.is_ascii_alphanumeric() || b"+._?=-".contains(&b);
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let mut copied = 0;
    while let Some(pos) = s[i..].find(PREFIX) {
        let start = i + pos;
        let h = start + PREFIX.len();
        let hash_ok = bytes.len() > h + 32
            && bytes[h..h + 32]
                .iter()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
            && bytes[h + 32] == b'-';
        if !hash_ok {
            i = start + 1;
            continue;
        }
        let mut end = h + 33;
        while end < bytes.len() && name_char(bytes[end]) {
            end += 1;
        }
        out.push_str(&s[copied..start]);
        out.push_str("/nix/store/*");
        copied = end;
        i = end;
    }
    out.push_str(&s[copied..]);
    out
}

/// `v` as Nix's `builtins.toJSON` prints it: object keys sorted bytewise at every level, no
/// whitespace, strings escaped as `\"` `\\` `\b` `\f` `\n` `\r` `\t` and other bytes below
/// 0x20 as `\u00xx`, everything else raw UTF-8 (serde_json's escaping, with sorted keys).
pub(crate) fn canonical_json(v: &serde_json::Value) -> String {
    fn write(v: &serde_json::Value, out: &mut String) {
        match v {
            serde_json::Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
                out.push('{');
                for (i, k) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::Value::String(k.clone()).to_string());
                    out.push(':');
                    write(&m[k], out);
                }
                out.push('}');
            }
            serde_json::Value::Array(a) => {
                out.push('[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(x, out);
                }
                out.push(']');
            }
            scalar => out.push_str(&scalar.to_string()),
        }
    }
    let mut out = String::new();
    write(v, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Generator, String> {
        parse_generator("g", Path::new("g.yaml"), text)
    }

    #[test]
    fn defaults_follow_clan() {
        let g =
            parse("files:\n  a:\n  b.pub: { secret: false }\nscript: touch $out/a $out/b.pub\n")
                .unwrap();
        let a = &g.files["a"];
        assert!(a.secret && a.deploy && a.mode == 0o400 && a.owner == "root");
        assert_eq!(a.needed_for, NeededFor::Services);
        assert!(!g.files["b.pub"].secret);
    }

    #[test]
    fn rejects_bad_input() {
        assert!(
            parse("bogus: 1\nfiles: {a: }\nscript: x\n")
                .unwrap_err()
                .contains("bogus")
        );
        assert!(
            parse("files: {a: {mode: \"999\"}}\nscript: x\n")
                .unwrap_err()
                .contains("mode")
        );
        assert!(
            parse("files: {a: {mode: 400}}\nscript: x\n")
                .unwrap_err()
                .contains("quoted")
        );
        assert!(
            parse("files: {\"../x\": }\nscript: x\n")
                .unwrap_err()
                .contains("../x")
        );
        assert!(
            parse("files: {\"a/b\": }\nscript: x\n")
                .unwrap_err()
                .contains("a/b")
        );
        assert!(
            parse("files: {\"\": }\nscript: x\n")
                .unwrap_err()
                .contains("empty")
        );
        assert!(parse("files: {sops: }\nscript: x\n").is_err());
        assert!(parse("files: {a_unencrypted: }\nscript: x\n").is_err());
    }

    #[test]
    fn modes() {
        assert_eq!(parse_mode(&"0640".into()).unwrap(), 0o640);
        assert_eq!(parse_mode(&"600".into()).unwrap(), 0o600);
        assert!(parse_mode(&"4755".into()).is_err());
        assert!(parse_mode(&"0x1".into()).is_err());
    }
    #[test]
    fn canonical_json_is_nix_to_json() {
        let v: serde_json::Value = serde_json::from_str(
            r#"{"b":[1,{"z":null,"a":true}],"a":"q\"\\\n\t\u0001\u001f\u007f é","B":-3}"#,
        )
        .unwrap();
        assert_eq!(
            canonical_json(&v),
            "{\"B\":-3,\"a\":\"q\\\"\\\\\\n\\t\\u0001\\u001f\u{7f} é\",\"b\":[1,{\"a\":true,\"z\":null}]}"
        );
    }

    /// A fixed vector, also checked against `builtins.hashString "sha256" (builtins.toJSON …)`
    /// in tests/nix_module.rs: changing the definition of the fingerprint breaks both.
    #[test]
    fn own_fingerprint_vector() {
        let g = parse(
            "dependencies: [b, a]\nshare: true\nvalidation: { z: 1, a: [x, \"y\\n\"] }\nfiles:\n  k: { mode: \"0600\", owner: nobody }\n  c.pub: { secret: false, deploy: false }\nscript: \"echo \\\"hi\\\"\\t\\x01\\n\"\n",
        )
        .unwrap();
        let json = serde_json::json!({
            "dependencies": g.dependencies,
            "files": { "c.pub": { "deploy": false, "secret": false }, "k": { "deploy": true, "secret": true } },
            "script": g.script,
            "share": true,
            "validation": g.validation,
        });
        assert_eq!(g.script, "echo \"hi\"\t\u{1}\n");
        assert_eq!(
            canonical_json(&json),
            "{\"dependencies\":[\"b\",\"a\"],\"files\":{\"c.pub\":{\"deploy\":false,\"secret\":false},\"k\":{\"deploy\":true,\"secret\":true}},\"script\":\"echo \\\"hi\\\"\\t\\u0001\\n\",\"share\":true,\"validation\":{\"a\":[\"x\",\"y\\n\"],\"z\":1}}"
        );
        assert_eq!(g.own_fingerprint(), OWN_VECTOR);
        // Mode and owner are not part of it.
        let g2 = parse(
            "dependencies: [b, a]\nshare: true\nvalidation: { a: [x, \"y\\n\"], z: 1 }\nfiles:\n  k: { mode: \"0400\" }\n  c.pub: { secret: false, deploy: false }\nscript: \"echo \\\"hi\\\"\\t\\x01\\n\"\n",
        )
        .unwrap();
        assert_eq!(g2.own_fingerprint(), OWN_VECTOR);
    }

    /// The same input through `fingerprint.nix`'s `maskStorePaths` (nix eval) gives exactly
    /// this output.
    #[test]
    fn store_paths_are_masked() {
        let s = "a /nix/store/0123456789abcdefghijklmnopqrstuv-openssh-9.6p1/bin/ssh-keygen b /nix/store/short-x /nix/store/0123456789abcdefghijklmnopqrstuv-c";
        assert_eq!(
            mask_store_paths(s),
            "a /nix/store/*/bin/ssh-keygen b /nix/store/short-x /nix/store/*"
        );
        // A nixpkgs bump (other hash, other version) changes no hash; a comment only the
        // script hash (a notice).
        let g = |script: &str, v: &str| {
            parse(&format!(
                "files: {{a: }}\nvalidation: {{ tool: \"{v}\" }}\nscript: \"{script}\"\n"
            ))
            .unwrap()
        };
        let old = g(
            "/nix/store/0123456789abcdefghijklmnopqrstuv-openssh-9.6p1/bin/ssh-keygen",
            "/nix/store/0123456789abcdefghijklmnopqrstuv-x-1",
        );
        let bumped = g(
            "/nix/store/zz23456789abcdefghijklmnopqrstuv-openssh-9.9p2/bin/ssh-keygen",
            "/nix/store/zz23456789abcdefghijklmnopqrstuv-x-2",
        );
        assert_eq!(old.script_hash(), bumped.script_hash());
        assert_eq!(old.validation_hash(), bumped.validation_hash());
        assert_eq!(old.shape_hash(), bumped.shape_hash());
        assert!(parse("files: {a: }\n").unwrap().validation_hash().is_none());
    }

    #[test]
    fn prompt_only_generator_and_persisted_prompt_files() {
        let g = parse("prompts:\n  ssid: { persist: true, display: { label: SSID, helperText: h } }\nshare: true\n")
            .unwrap();
        assert_eq!(g.script, "");
        let f = &g.files["ssid"];
        assert!(f.secret && f.deploy, "clan: secret and deployed by default");
        assert_eq!(
            g.prompts["ssid"].display.as_ref().unwrap().label.as_deref(),
            Some("SSID")
        );
        // Declared explicitly, the file keeps its own settings.
        let g =
            parse("prompts: { p: { persist: true } }\nfiles: { p: { deploy: false } }\n").unwrap();
        assert!(!g.files["p"].deploy);
    }

    const OWN_VECTOR: &str = "4d41371a50e4e94e1c10aeef5ad2426d6ad2b50762eefc99072b21159a205c29";
}
