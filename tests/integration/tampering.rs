//! Every tampered variant of a receipt, and every broken trust policy, is rejected by
//! both `gridledger verify` (exit 1, with a reason) and the independent Python verifier
//! (exit 1), and nothing panics.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use gridledger_tests::{DevNode, python_verify, stderr, stdout};

use crate::util::{DEV_ORIGIN, assert_no_panic, foreign_verifier_key, policy_json, trust_keys};

/// A receipt split into its parts, so variants can change one thing at a time.
#[derive(Clone)]
struct Parts {
    extra: String,
    index: String,
    path: Vec<String>,
    origin: String,
    size: String,
    root: String,
    sigs: Vec<String>,
}

impl Parts {
    fn parse(text: &str) -> Self {
        let (head, note) = text.split_once("\n\n").expect("receipt has a blank line");
        let mut h = head.split('\n');
        assert_eq!(h.next(), Some("c2sp.org/tlog-proof@v1"));
        let extra = h
            .next()
            .unwrap()
            .strip_prefix("extra ")
            .expect("extra line")
            .to_string();
        let index = h
            .next()
            .unwrap()
            .strip_prefix("index ")
            .expect("index line")
            .to_string();
        let path: Vec<String> = h.map(str::to_string).collect();
        let (body, sigs) = note.split_once("\n\n").expect("note has a blank line");
        let b: Vec<&str> = body.split('\n').collect();
        assert_eq!(b.len(), 3, "checkpoint body: {body:?}");
        let sigs: Vec<String> = sigs
            .strip_suffix('\n')
            .expect("note ends in newline")
            .split('\n')
            .map(str::to_string)
            .collect();
        Parts {
            extra,
            index,
            path,
            origin: b[0].into(),
            size: b[1].into(),
            root: b[2].into(),
            sigs,
        }
    }

    fn render(&self) -> String {
        let mut s = format!(
            "c2sp.org/tlog-proof@v1\nextra {}\nindex {}\n",
            self.extra, self.index
        );
        for p in &self.path {
            s.push_str(p);
            s.push('\n');
        }
        s.push_str(&format!(
            "\n{}\n{}\n{}\n\n",
            self.origin, self.size, self.root
        ));
        for l in &self.sigs {
            s.push_str(l);
            s.push('\n');
        }
        s
    }
}

/// Flips bit `bit` of byte `at` of a base64 string's decoded bytes and re-encodes.
fn flip_b64(s: &str, at: usize, bit: u8) -> String {
    let mut raw = B64.decode(s).expect("base64");
    let at = at % raw.len();
    raw[at] ^= 1 << bit;
    B64.encode(raw)
}

/// Replaces the character at `pos` of the base64 part of a signature line with another
/// base64 character.
fn flip_sig_char(line: &str, pos_from_start_of_b64: usize) -> String {
    let (prefix, b64) = line.rsplit_once(' ').expect("signature line has a space");
    let mut chars: Vec<char> = b64.chars().collect();
    let c = &mut chars[pos_from_start_of_b64];
    *c = if *c == 'A' { 'B' } else { 'A' };
    format!("{prefix} {}", chars.into_iter().collect::<String>())
}

struct Case {
    name: String,
    receipt: Vec<u8>,
    trust: Option<Vec<u8>>,
}

#[test]
fn every_tampered_receipt_and_bad_trust_policy_is_rejected_by_cli_and_independent_verifier() {
    let node = DevNode::start(20);
    let (size, _) = crate::util::size_and_root(&node);
    assert!(size > 40, "demo seeded: size {size}");
    // A leaf in the middle so the path has several lines and the index has neighbours.
    let index = size / 2 - 1;
    let orig_path = node.dir.join("orig.tlog-proof");
    let o = node.cli(&[
        "receipt",
        "--index",
        &index.to_string(),
        "-o",
        orig_path.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "receipt: {}", stderr(&o));
    let original = std::fs::read_to_string(&orig_path).unwrap();
    let trust = std::fs::read(node.trust()).unwrap();

    // Baseline: the untouched receipt verifies with both, so every rejection below is
    // caused by the tampering alone.
    let v = node.cli(&[
        "verify",
        orig_path.to_str().unwrap(),
        "--trust",
        node.trust().to_str().unwrap(),
    ]);
    assert!(
        v.status.success(),
        "original receipt must verify: {}",
        stderr(&v)
    );
    let p = python_verify(&[
        "receipt".as_ref(),
        orig_path.as_os_str(),
        "--trust".as_ref(),
        node.trust().as_os_str(),
    ]);
    assert!(
        p.status.success(),
        "original receipt must verify with python: {}",
        stderr(&p)
    );

    let parts = Parts::parse(&original);
    assert_eq!(
        parts.render(),
        original,
        "the test's parser round-trips the receipt"
    );
    assert!(
        parts.path.len() >= 3,
        "want a path of several lines, got {}",
        parts.path.len()
    );
    assert_eq!(parts.sigs.len(), 1);

    let mut cases: Vec<Case> = Vec::new();
    let mut add = |name: &str, p: &Parts| {
        cases.push(Case {
            name: name.into(),
            receipt: p.render().into_bytes(),
            trust: None,
        })
    };

    // The leaf bytes.
    let leaf_len = B64.decode(&parts.extra).unwrap().len();
    for (at, bit) in [(0usize, 0u8), (7, 3), (leaf_len / 2, 7), (leaf_len - 1, 0)] {
        let mut p = parts.clone();
        p.extra = flip_b64(&p.extra, at, bit);
        add(&format!("leaf byte {at} bit {bit} flipped"), &p);
    }
    {
        let mut p = parts.clone();
        p.extra = String::new();
        add("empty leaf", &p);
    }
    // The index.
    for (label, new) in [
        ("index + 1", (index + 1).to_string()),
        ("index - 1", (index - 1).to_string()),
        ("index = tree size", size.to_string()),
        ("index with leading zero", format!("0{index}")),
        ("index negative", format!("-{index}")),
        ("index beyond u64", "99999999999999999999999".to_string()),
    ] {
        let mut p = parts.clone();
        p.index = new;
        add(label, &p);
    }
    // Each inclusion path line.
    for i in 0..parts.path.len() {
        for bit in [0u8, 7] {
            let mut p = parts.clone();
            p.path[i] = flip_b64(&p.path[i], i * 5 + 3, bit);
            add(&format!("path line {i} bit {bit} flipped"), &p);
        }
    }
    {
        let mut p = parts.clone();
        p.path.pop();
        add("last path line dropped", &p);
        let mut p = parts.clone();
        p.path.remove(0);
        add("first path line dropped", &p);
        let mut p = parts.clone();
        p.path.push(B64.encode([0x42u8; 32]));
        add("path line added at the end", &p);
        let mut p = parts.clone();
        p.path.insert(0, parts.path[0].clone());
        add("first path line duplicated", &p);
        let mut p = parts.clone();
        p.path.swap(0, 1);
        add("two path lines swapped", &p);
        let mut p = parts.clone();
        p.path[0] = B64.encode([7u8; 31]);
        add("path line of 31 bytes", &p);
    }
    // The checkpoint.
    let n: u64 = parts.size.parse().unwrap();
    for (label, new) in [
        ("tree size + 1", (n + 1).to_string()),
        ("tree size - 1", (n - 1).to_string()),
        ("tree size with leading zero", format!("0{n}")),
    ] {
        let mut p = parts.clone();
        p.size = new;
        add(label, &p);
    }
    {
        let mut p = parts.clone();
        p.root = flip_b64(&p.root, 0, 0);
        add("root bit flipped", &p);
        let mut p = parts.clone();
        p.root = flip_b64(&p.root, 31, 7);
        add("root last byte flipped", &p);
        let mut p = parts.clone();
        p.origin = format!("{}x", parts.origin);
        add("origin line changed", &p);
    }
    {
        let sig_b64_len = parts.sigs[0].rsplit_once(' ').unwrap().1.len();
        for pos in [2usize, 10, 40, sig_b64_len - 5] {
            let mut p = parts.clone();
            p.sigs[0] = flip_sig_char(&p.sigs[0], pos);
            add(&format!("signature base64 char {pos} changed"), &p);
        }
        let mut p = parts.clone();
        p.sigs.clear();
        add("signature line removed", &p);
        let mut p = parts.clone();
        p.sigs[0] = p.sigs[0].replacen('\u{2014}', "-", 1);
        add("signature line with a hyphen instead of an em dash", &p);
    }
    // Whole-file damage.
    let raw = original.as_bytes().to_vec();
    let mut push_raw = |name: &str, receipt: Vec<u8>| {
        cases.push(Case {
            name: name.into(),
            receipt,
            trust: None,
        })
    };
    push_raw(
        "trailing garbage line",
        [raw.clone(), b"trailing garbage\n".to_vec()].concat(),
    );
    push_raw(
        "trailing garbage without newline",
        [raw.clone(), b"xyz".to_vec()].concat(),
    );
    push_raw(
        "trailing blank line",
        [raw.clone(), b"\n".to_vec()].concat(),
    );
    push_raw("truncated to half", raw[..raw.len() / 2].to_vec());
    push_raw(
        "last byte cut (no final newline)",
        raw[..raw.len() - 1].to_vec(),
    );
    push_raw("empty file", Vec::new());
    push_raw(
        "CRLF line endings",
        original.replace('\n', "\r\n").into_bytes(),
    );
    {
        let mut bad = raw.clone();
        let at = original.find(DEV_ORIGIN).unwrap() + 3;
        bad.insert(at, 0xff);
        push_raw("non-UTF-8 byte in the checkpoint", bad);
    }
    push_raw(
        "binary noise",
        (0..512u32).map(|i| (i * 37 % 251) as u8 | 0x80).collect(),
    );

    // Trust policies (with the untouched receipt).
    let keys = trust_keys(&node.trust());
    let name = keys[0].split('+').next().unwrap().to_string();
    let mut with_trust = |label: &str, t: String| {
        cases.push(Case {
            name: label.into(),
            receipt: raw.clone(),
            trust: Some(t.into_bytes()),
        })
    };
    with_trust(
        "trust: wrong origin",
        policy_json("gridledger.example/other", 1, &keys),
    );
    with_trust(
        "trust: a different key with the same name",
        policy_json(DEV_ORIGIN, 1, &[foreign_verifier_key(&name)]),
    );
    with_trust(
        "trust: quorum 2 of the real key and a foreign one",
        policy_json(
            DEV_ORIGIN,
            2,
            &[keys[0].clone(), foreign_verifier_key("someone.else/node-2")],
        ),
    );
    with_trust("trust: not JSON", "this is { not json".into());
    with_trust("trust: empty file", String::new());
    with_trust("trust: quorum 0", policy_json(DEV_ORIGIN, 0, &keys));
    with_trust(
        "trust: quorum above the number of keys",
        policy_json(DEV_ORIGIN, 2, &keys),
    );
    with_trust("trust: no keys", policy_json(DEV_ORIGIN, 1, &[]));
    with_trust(
        "trust: unknown field",
        String::from_utf8(trust.clone()).unwrap().replacen(
            "\"quorum\"",
            "\"quorom\": 1, \"quorum\"",
            1,
        ),
    );
    {
        // A key id that does not match the key.
        let k = &keys[0];
        let mut parts: Vec<&str> = k.splitn(3, '+').collect();
        let bad_id = if parts[1].starts_with('0') {
            format!("1{}", &parts[1][1..])
        } else {
            format!("0{}", &parts[1][1..])
        };
        parts[1] = &bad_id;
        with_trust(
            "trust: key id does not match the key",
            policy_json(DEV_ORIGIN, 1, &[parts.join("+")]),
        );
    }

    // A duplicated signature line must not count twice towards a quorum of 2.
    {
        let mut p = parts.clone();
        p.sigs.push(parts.sigs[0].clone());
        let t = policy_json(
            DEV_ORIGIN,
            2,
            &[keys[0].clone(), foreign_verifier_key("someone.else/node-2")],
        );
        cases.push(Case {
            name: "signature line duplicated, quorum 2".into(),
            receipt: p.render().into_bytes(),
            trust: Some(t.into_bytes()),
        });
    }

    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let rpath = node.dir.join(format!("t{i}.tlog-proof"));
        std::fs::write(&rpath, &case.receipt).unwrap();
        let tpath = match &case.trust {
            None => node.trust(),
            Some(t) => {
                let p = node.dir.join(format!("t{i}-trust.json"));
                std::fs::write(&p, t).unwrap();
                p
            }
        };
        let c = node.cli(&[
            "verify",
            rpath.to_str().unwrap(),
            "--trust",
            tpath.to_str().unwrap(),
        ]);
        assert_no_panic(&format!("gridledger verify, case {:?}", case.name), &c);
        let err = stderr(&c);
        if c.status.code() != Some(1) {
            failures.push(format!(
                "[{}] gridledger verify exited {:?} (want 1); stdout {:?} stderr {:?}",
                case.name,
                c.status.code(),
                stdout(&c),
                err
            ));
        } else if !err.starts_with("error: ") || err.trim().len() < "error: ".len() + 10 {
            failures.push(format!(
                "[{}] gridledger verify gave no reason on stderr: {err:?}",
                case.name
            ));
        } else if !stdout(&c).is_empty() {
            failures.push(format!(
                "[{}] gridledger verify printed to stdout while failing: {:?}",
                case.name,
                stdout(&c)
            ));
        }
        let p = python_verify(&[
            "receipt".as_ref(),
            rpath.as_os_str(),
            "--trust".as_ref(),
            tpath.as_os_str(),
        ]);
        assert_no_panic(&format!("python verifier, case {:?}", case.name), &p);
        if p.status.code() != Some(1) {
            failures.push(format!(
                "[{}] python verifier exited {:?} (want 1); stdout {:?} stderr {:?}",
                case.name,
                p.status.code(),
                stdout(&p),
                stderr(&p)
            ));
        } else if !stderr(&p).contains("FAIL") {
            failures.push(format!(
                "[{}] python verifier gave no FAIL reason: {:?}",
                case.name,
                stderr(&p)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} tampered variants were not rejected as expected:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn verify_explains_why_a_tampered_receipt_is_rejected() {
    // The reason on stderr names the broken part, so an operator can act on it.
    let node = DevNode::start(20);
    let r = node.dir.join("r.tlog-proof");
    let o = node.cli(&["receipt", "--index", "3", "-o", r.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let parts = Parts::parse(&std::fs::read_to_string(&r).unwrap());
    let check = |label: &str, p: &Parts, needles: &[&str]| {
        let f = node
            .dir
            .join(format!("{}.tlog-proof", label.replace(' ', "_")));
        std::fs::write(&f, p.render()).unwrap();
        let c = node.cli(&[
            "verify",
            f.to_str().unwrap(),
            "--trust",
            node.trust().to_str().unwrap(),
        ]);
        assert_eq!(c.status.code(), Some(1), "{label}: {}", stderr(&c));
        let e = stderr(&c).to_lowercase();
        assert!(
            needles.iter().any(|n| e.contains(n)),
            "{label}: stderr should mention one of {needles:?}: {e}"
        );
    };
    let mut p = parts.clone();
    p.extra = flip_b64(&p.extra, 10, 1);
    check("leaf flipped", &p, &["inclusion", "root"]);
    let mut p = parts.clone();
    p.root = flip_b64(&p.root, 0, 0);
    check("root flipped", &p, &["signature"]);
    let mut p = parts.clone();
    p.sigs.clear();
    check("no signature", &p, &["signature", "note"]);
    let mut p = parts.clone();
    p.index = "x".into();
    check("bad index", &p, &["index"]);
}
