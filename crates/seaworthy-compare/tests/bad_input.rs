//! Bad input: the short-form parsers take any string without panicking, and either produce a
//! value that round-trips through its short form or fail with an error that quotes the input.
//! Malformed definitions fail at `start` with that error, before anything is created.
//!
//! (Spec files and WASM plugins are fuzzed by their own crates: `seaworthy-cli`'s
//! `structure::spec::fuzz` and `seaworthy-plugin`'s `tests/malformed.rs`.)

use std::time::{Duration, Instant};

use proptest::prelude::*;
use seaworthy::{
    parse_env, ContainerDefinition, Error, ImageRef, MountSource, MountSpec, PortSpec, Protocol,
    PullPolicy, ResourceKind,
};
use seaworthy_compare::{leaks, BUSYBOX};

/// The error of a refused string: `Invalid`, of the expected kind, quoting the input.
fn assert_names_input(err: &Error, kind: &str, input: &str) {
    let text = err.to_string();
    assert!(
        matches!(err, Error::Invalid { kind: k, .. } if *k == kind),
        "{input:?}: expected an invalid {kind}, got {err:?}"
    );
    assert!(
        text.contains(&format!("{input:?}")),
        "the message quotes the input {input:?}: {text}"
    );
}

/// The short form of a parsed port.
fn port_short_form(p: &PortSpec) -> String {
    let ports = match (&p.host_ip, p.host_port) {
        (Some(ip), Some(h)) => format!("{ip}:{h}:{}", p.container_port),
        (Some(ip), None) => format!("{ip}::{}", p.container_port),
        (None, Some(h)) => format!("{h}:{}", p.container_port),
        (None, None) => p.container_port.to_string(),
    };
    format!("{ports}/{}", p.protocol)
}

/// The short form of a parsed mount.
fn mount_short_form(m: &MountSpec) -> String {
    let source = match &m.source {
        MountSource::Volume(name) => name.clone(),
        MountSource::Bind(path) => path.display().to_string(),
        other => panic!("the short form cannot make {other:?}"),
    };
    let mode = if m.read_only { ":ro" } else { "" };
    format!("{source}:{}{mode}", m.target)
}

/// Strings made mostly of the characters these grammars care about, plus anything at all.
fn tricky(alphabet: &'static str, max: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::string::string_regex(&format!("[{alphabet}]{{0,{max}}}"))
            .expect("a valid regex"),
        1 => any::<String>(),
    ]
}

/// Valid references, in the parts they should parse into.
fn valid_reference(
) -> impl Strategy<Value = (Option<String>, String, Option<String>, Option<String>)> {
    let component = "[a-z0-9]{1,8}((_|__|-{1,2})[a-z0-9]{1,8}){0,2}";
    let registry = prop_oneof![
        Just("localhost".to_string()),
        "[a-z][a-z0-9-]{0,8}[a-z0-9]\\.[a-z]{2,4}",
        "[a-z]{1,8}\\.[a-z]{2,4}:[1-9][0-9]{0,3}",
        "127\\.0\\.0\\.1:[1-9][0-9]{0,3}",
    ];
    let path = proptest::collection::vec(component, 1..4).prop_map(|parts| parts.join("/"));
    let tag = "[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}";
    let digest = "sha256:[0-9a-f]{64}";
    (
        proptest::option::of(registry),
        path,
        proptest::option::of(tag),
        proptest::option::of(digest),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn image_references_round_trip_or_name_the_input(input in tricky("a-zA-Z0-9:/@._ +-", 80)) {
        match ImageRef::parse(&input) {
            Ok(parsed) => {
                let canonical = parsed.to_string();
                let again = ImageRef::parse(&canonical);
                prop_assert!(again.is_ok(), "{input:?} parsed, but its canonical form {canonical:?} does not: {again:?}");
                prop_assert_eq!(again.ok(), Some(parsed.clone()));
                prop_assert!(!parsed.repository().is_empty());
                prop_assert!(parsed.tag().is_some() || parsed.digest().is_some());
            }
            Err(err) => assert_names_input(&err, "image reference", &input),
        }
    }

    #[test]
    fn valid_image_references_parse_into_their_parts(
        (registry, path, tag, digest) in valid_reference()
    ) {
        let mut input = match &registry {
            Some(r) => format!("{r}/{path}"),
            None => path.clone(),
        };
        if let Some(t) = &tag {
            input.push(':');
            input.push_str(t);
        }
        if let Some(d) = &digest {
            input.push('@');
            input.push_str(d);
        }
        let parsed = ImageRef::parse(&input).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(parsed.registry(), registry.as_deref());
        prop_assert_eq!(parsed.repository(), path.as_str());
        let expected_tag = match (&tag, &digest) {
            (None, None) => Some("latest"),
            (t, _) => t.as_deref(),
        };
        prop_assert_eq!(parsed.tag(), expected_tag);
        prop_assert_eq!(parsed.digest(), digest.as_deref());
        prop_assert_eq!(ImageRef::parse(&parsed.to_string()).ok(), Some(parsed));
    }

    #[test]
    fn mounts_round_trip_or_name_the_input(input in tricky("a-z0-9./:_ -", 40)) {
        match MountSpec::parse(&input) {
            Ok(mount) => {
                prop_assert!(mount.target.starts_with('/'), "{input:?}: {mount:?}");
                if let MountSource::Bind(path) = &mount.source {
                    prop_assert!(path.is_absolute(), "{input:?}: {mount:?}");
                }
                let short = mount_short_form(&mount);
                prop_assert_eq!(MountSpec::parse(&short).ok(), Some(mount), "via {:?}", short);
            }
            Err(err) => assert_names_input(&err, "mount", &input),
        }
    }

    #[test]
    fn valid_mounts_parse_into_their_parts(
        source in prop_oneof!["[a-z0-9][a-z0-9_.-]{0,12}", "(/[a-z0-9_.-]{1,8}){1,3}"],
        target in "(/[a-z0-9_.-]{1,8}){1,3}",
        mode in prop_oneof![Just(""), Just(":ro"), Just(":rw")],
    ) {
        let input = format!("{source}:{target}{mode}");
        let mount = MountSpec::parse(&input).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&mount.target, &target);
        prop_assert_eq!(mount.read_only, mode == ":ro");
        let expected = if source.starts_with('/') {
            MountSource::Bind(source.clone().into())
        } else {
            MountSource::Volume(source.clone())
        };
        prop_assert_eq!(mount.source, expected);
    }

    #[test]
    fn ports_round_trip_or_name_the_input(input in tricky("0-9a-z.:/", 30)) {
        match PortSpec::parse(&input) {
            Ok(port) => {
                prop_assert!(port.container_port > 0);
                prop_assert!(port.host_port != Some(0));
                if let Some(ip) = &port.host_ip {
                    prop_assert!(ip.parse::<std::net::IpAddr>().is_ok(), "{input:?}: {port:?}");
                }
                let short = port_short_form(&port);
                prop_assert_eq!(PortSpec::parse(&short).ok(), Some(port), "via {:?}", short);
            }
            Err(err) => assert_names_input(&err, "port", &input),
        }
    }

    #[test]
    fn valid_ports_parse_into_their_parts(
        ip in proptest::option::of((0u8..=255, 0u8..=255, 0u8..=255, 0u8..=255)),
        host in proptest::option::of(1u16..),
        container in 1u16..,
        protocol in prop_oneof![Just(None), Just(Some(Protocol::Tcp)), Just(Some(Protocol::Udp)), Just(Some(Protocol::Sctp))],
    ) {
        let ip = ip.map(|(a, b, c, d)| format!("{a}.{b}.{c}.{d}"));
        let mut input = match (&ip, host) {
            (Some(ip), Some(h)) => format!("{ip}:{h}:{container}"),
            (Some(ip), None) => format!("{ip}::{container}"),
            (None, Some(h)) => format!("{h}:{container}"),
            (None, None) => container.to_string(),
        };
        if let Some(p) = protocol {
            input.push_str(&format!("/{p}"));
        }
        let port = PortSpec::parse(&input).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(port.container_port, container);
        prop_assert_eq!(port.host_port, host);
        prop_assert_eq!(port.host_ip, ip);
        prop_assert_eq!(port.protocol, protocol.unwrap_or(Protocol::Tcp));
    }

    #[test]
    fn env_entries_round_trip_or_name_the_input(input in tricky("A-Za-z0-9_= \t\0é", 30)) {
        match parse_env(&input) {
            Ok((key, value)) => {
                prop_assert!(!key.is_empty() && !key.contains('='));
                prop_assert!(!key.chars().any(char::is_whitespace));
                prop_assert_eq!(format!("{key}={value}"), input.clone());
                prop_assert_eq!(parse_env(&input).ok(), Some((key, value)));
            }
            Err(err) => assert_names_input(&err, "environment entry", &input),
        }
    }
}

#[tokio::test]
async fn malformed_definitions_fail_at_start_naming_the_bad_string_and_create_nothing(
) -> anyhow::Result<()> {
    let session = leaks::isolated_session().await?;
    let busybox = || ContainerDefinition::new(BUSYBOX).with_cmd(["sleep", "60"]);
    let cases: Vec<(&str, ContainerDefinition)> = vec![
        ("Redis:7", ContainerDefinition::new("Redis:7")),
        ("redis:", ContainerDefinition::new("redis:")),
        ("", ContainerDefinition::new("")),
        ("re dis", ContainerDefinition::new("re dis")),
        ("app@sha256:zz", ContainerDefinition::new("app@sha256:zz")),
        ("a//b", ContainerDefinition::new("a//b")),
        ("host:99999/app", ContainerDefinition::new("host:99999/app")),
        ("redis:-7", busybox().with_image("redis:-7")),
        ("NO_EQUALS", busybox().with_env_entries(["NO_EQUALS"])),
        ("=value", busybox().with_env_entries(["A=1", "=value"])),
        ("SP ACE=1", busybox().with_env_entries(["SP ACE=1"])),
        ("99999", busybox().with_port_spec("99999")),
        ("0", busybox().with_port_spec("0")),
        ("80/icmp", busybox().with_port_spec("80/icmp")),
        ("x:80", busybox().with_port_spec("x:80")),
        (
            "localhost:8080:80",
            busybox().with_port_spec("localhost:8080:80"),
        ),
        ("data", busybox().with_mount("data")),
        ("data:relative", busybox().with_mount("data:relative")),
        ("/host:/in:rx", busybox().with_mount("/host:/in:rx")),
        ("da ta:/x", busybox().with_mount("da ta:/x")),
    ];
    for (bad, definition) in cases {
        let asked = Instant::now();
        let err = definition
            .start_in(&session)
            .await
            .expect_err("a malformed definition cannot start");
        let text = err.to_string();
        assert!(
            matches!(err, Error::Invalid { .. }),
            "{bad:?}: expected an invalid definition, got {err:?}"
        );
        assert!(
            text.contains(&format!("{bad:?}")),
            "the error quotes {bad:?}: {text}"
        );
        assert!(
            asked.elapsed() < Duration::from_secs(1),
            "{bad:?}: fails before any engine call"
        );
    }
    assert_eq!(session.live_count(ResourceKind::Container), 0);
    assert_eq!(session.live_count(ResourceKind::Network), 0);
    assert!(leaks::leftovers(&session).await?.is_empty());
    leaks::close_session(&session)
        .await
        .map_err(anyhow::Error::msg)?;
    Ok(())
}

#[tokio::test]
async fn a_missing_tag_fails_naming_the_image_and_creates_nothing() -> anyhow::Result<()> {
    let session = leaks::isolated_session().await?;
    let image = format!("{BUSYBOX}:no-such-tag");
    // Never pull: the error says the image is not here.
    let err = ContainerDefinition::new(&image)
        .with_pull_policy(PullPolicy::Never)
        .start_in(&session)
        .await
        .expect_err("the tag does not exist")
        .to_string();
    assert!(
        err.contains(&image) && err.contains("not present locally"),
        "{err}"
    );
    // Pull when missing: no registry has it (none is reachable here), and the error says so.
    let asked = Instant::now();
    let err = ContainerDefinition::new(&image)
        .start_in(&session)
        .await
        .expect_err("the tag does not exist")
        .to_string();
    assert!(err.contains(&image) && err.contains("pull failed"), "{err}");
    eprintln!(
        "pulling a missing tag failed after {:.1?}: {err}",
        asked.elapsed()
    );
    assert_eq!(session.live_count(ResourceKind::Container), 0);
    leaks::close_session(&session)
        .await
        .map_err(anyhow::Error::msg)?;
    Ok(())
}

/// Docker limits the *name* (registry and repository) to 255 characters, not the whole
/// reference: a name at the limit must parse, and its canonical form (with `:latest` added)
/// must parse again; a pinned digest must not count against the name's length.
#[test]
fn references_are_limited_by_the_length_of_their_name() {
    let name = format!("{}/{}", "a".repeat(127), "b".repeat(127));
    assert_eq!(name.len(), 255);
    let parsed = ImageRef::parse(&name).expect("a 255-character name is valid");
    let canonical = parsed.to_string();
    assert_eq!(
        ImageRef::parse(&canonical).ok(),
        Some(parsed),
        "the canonical form {canonical:?} parses again"
    );
    let pinned = format!("{}@sha256:{}", "c".repeat(200), "0".repeat(64));
    assert!(ImageRef::parse(&pinned).is_ok(), "{pinned:?}");
}
