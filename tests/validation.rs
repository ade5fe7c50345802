//! Definition validation through the binary: every error exits 2, names the file (and the
//! machine and generator), and writes nothing.

use crate::util::common::*;

const INV: &str = "admins:\n  alice: ADMIN\nmachines:\n  m1:\n    generators: [g]\n";

fn assert_rejected(ws: &Ws, needles: &[&str]) {
    let before = ws.snapshot();
    let out = ws.run(&["generate", "--no-sandbox"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    for n in needles {
        assert!(err.contains(n), "expected {n:?} in: {err}");
    }
    assert_eq!(before, ws.snapshot(), "a rejected run wrote something");
    let plan = ws.run(&["generate", "--plan"]);
    assert_eq!(plan.status.code(), Some(2));
}

#[test]
fn unknown_key() {
    let ws = Ws::new(INV);
    ws.generator("g", "files: {a: }\nscript: touch $out/a\nbogus: 1\n");
    assert_rejected(&ws, &["generators/g.yaml", "bogus"]);
}

#[test]
fn bad_mode() {
    let ws = Ws::new(INV);
    ws.generator("g", "files: {a: {mode: \"0999\"}}\nscript: touch $out/a\n");
    assert_rejected(&ws, &["generators/g.yaml", "generator g", "0999"]);
}

#[test]
fn unsafe_file_names() {
    for name in ["../x", "a/b", "\"\""] {
        let ws = Ws::new(INV);
        ws.generator(
            "g",
            &format!(
                "files:\n  {}:\nscript: touch $out/a\n",
                if name == "\"\"" {
                    name.to_string()
                } else {
                    format!("\"{name}\"")
                }
            ),
        );
        assert_rejected(&ws, &["generators/g.yaml", "generator g"]);
    }
}

#[test]
fn unsafe_generator_name_in_inventory() {
    let ws = Ws::new("admins:\n  alice: ADMIN\nmachines:\n  m1:\n    generators: [\"../x\"]\n");
    assert_rejected(&ws, &["varsmith.yaml", "machine m1", "../x"]);
}

#[test]
fn unknown_generator_and_dependency() {
    let ws = Ws::new("admins:\n  alice: ADMIN\nmachines:\n  m1:\n    generators: [nope]\n");
    assert_rejected(&ws, &["varsmith.yaml", "machine m1", "nope"]);
    let ws = Ws::new(INV);
    ws.generator(
        "g",
        "dependencies: [missing]\nfiles: {a: }\nscript: touch $out/a\n",
    );
    assert_rejected(
        &ws,
        &[
            "generators/g.yaml",
            "generator g",
            "unknown dependency \"missing\"",
        ],
    );
}

#[test]
fn shared_depending_on_per_machine() {
    let ws = Ws::new(INV);
    ws.generator(
        "g",
        "share: true\ndependencies: [p]\nfiles: {a: }\nscript: touch $out/a\n",
    );
    ws.generator("p", "files: {b: }\nscript: touch $out/b\n");
    assert_rejected(
        &ws,
        &[
            "generators/g.yaml",
            "shared generator g depends on per-machine generator p",
        ],
    );
}

#[test]
fn shared_defined_differently() {
    let ws = Ws::new(
        "admins:\n  alice: ADMIN\nmachines:\n  m1:\n    generators: [g]\n  m2:\n    generators: [g]\n",
    );
    ws.generator("g", "share: true\nfiles: {a: }\nscript: touch $out/a\n");
    let d = ws.root().join("machines/m2/generators");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(
        d.join("g.yaml"),
        "share: true\nfiles: {a: }\nscript: echo other > $out/a\n",
    )
    .unwrap();
    assert_rejected(
        &ws,
        &[
            "shared generator g is defined differently",
            "machine m2",
            "machine m1",
        ],
    );
}

#[test]
fn cycles_are_reported_whole() {
    let ws = Ws::new(INV);
    ws.generator(
        "g",
        "dependencies: [b]\nfiles: {x: }\nscript: touch $out/x\n",
    );
    ws.generator(
        "a",
        "dependencies: [b]\nfiles: {x: }\nscript: touch $out/x\n",
    );
    ws.generator(
        "b",
        "dependencies: [c]\nfiles: {x: }\nscript: touch $out/x\n",
    );
    ws.generator(
        "c",
        "dependencies: [a]\nfiles: {x: }\nscript: touch $out/x\n",
    );
    let before = ws.snapshot();
    let out = ws.run(&["generate", "--no-sandbox"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("a -> b -> c -> a")
            || err.contains("b -> c -> a -> b")
            || err.contains("c -> a -> b -> c"),
        "{err}"
    );
    assert_eq!(before, ws.snapshot());
}

#[test]
fn unknown_machine_is_usage_error() {
    let ws = Ws::new(INV);
    ws.generator("g", "files: {a: }\nscript: touch $out/a\n");
    let out = ws.run(&["generate", "nosuchhost"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("nosuchhost"));
}
