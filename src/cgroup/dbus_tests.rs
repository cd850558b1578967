//! Runs in: unit tests. The marshalling against encodings written by
//! hand from the D-Bus specification, the parsing of replies, errors and
//! signals, and the call/signal-queue logic against a fake bus on a
//! socketpair (a thread: tests may have threads, the runtime has none).
use super::*;
use crate::cgroup::bus;
use std::time::Duration;

fn le(n: u32) -> [u8; 4] {
    n.to_le_bytes()
}

fn prop(name: &str, value: Value) -> Prop {
    Prop {
        name: name.to_string(),
        value,
    }
}

#[test]
fn hello_is_marshalled_as_the_spec_says() {
    let got = method_call(
        1,
        "org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus",
        "Hello",
        &Body::default(),
    );
    let mut want = Vec::new();
    want.extend_from_slice(b"l\x01\x00\x01"); // LE, METHOD_CALL, no flags, version 1
    want.extend_from_slice(&le(0)); // body length
    want.extend_from_slice(&le(1)); // serial
    want.extend_from_slice(&le(109)); // header fields: bytes 16..125
    want.extend_from_slice(b"\x01\x01o\x00"); // 16: PATH, variant "o"
    want.extend_from_slice(&le(21));
    want.extend_from_slice(b"/org/freedesktop/DBus\0\0\0"); // 24..46, pad to 48
    want.extend_from_slice(b"\x02\x01s\x00"); // 48: INTERFACE
    want.extend_from_slice(&le(20));
    want.extend_from_slice(b"org.freedesktop.DBus\0\0\0\0"); // 56..77, pad to 80
    want.extend_from_slice(b"\x03\x01s\x00"); // 80: MEMBER
    want.extend_from_slice(&le(5));
    want.extend_from_slice(b"Hello\0\0\0"); // 88..94, pad to 96
    want.extend_from_slice(b"\x06\x01s\x00"); // 96: DESTINATION
    want.extend_from_slice(&le(20));
    want.extend_from_slice(b"org.freedesktop.DBus\0"); // 104..125
    want.extend_from_slice(b"\0\0\0"); // header padded to 128, no body
    assert_eq!(got, want);
}

#[test]
fn start_transient_unit_body_aligns_as_the_spec_says() {
    let props = [
        prop("Delegate", Value::Bool(true)),
        prop("MemoryMax", Value::U64(0x1000)),
        prop("AllowedCPUs", Value::Bytes(vec![0x03, 0x0c])),
        prop(
            "DeviceAllow",
            Value::Pairs(vec![("/dev/null".into(), "rwm".into())]),
        ),
        prop("X", Value::U16(7)),
        prop("PIDs", Value::U32s(vec![42])),
        prop("Y", Value::I64(-1)),
    ];
    let refs: Vec<&Prop> = props.iter().collect();
    let body = Body::default()
        .str("a.scope")
        .str("replace")
        .props(&refs)
        .no_aux();
    assert_eq!(body.sig, "ssa(sv)a(sa(sv))");
    let mut want = Vec::new();
    want.extend_from_slice(&le(7));
    want.extend_from_slice(b"a.scope\0"); // 0..12
    want.extend_from_slice(&le(7));
    want.extend_from_slice(b"replace\0"); // 12..24
    want.extend_from_slice(&le(208)); // 24: a(sv) length, elements 32..240
    want.extend_from_slice(&[0; 4]); // to 32: struct alignment, not counted
    want.extend_from_slice(&le(8));
    want.extend_from_slice(b"Delegate\0"); // 32..45
    want.extend_from_slice(b"\x01b\0"); // ..48
    want.extend_from_slice(&le(1)); // ..52
    want.extend_from_slice(&[0; 4]); // struct at 56
    want.extend_from_slice(&le(9));
    want.extend_from_slice(b"MemoryMax\0"); // ..70
    want.extend_from_slice(b"\x01t\0"); // ..73
    want.extend_from_slice(&[0; 7]); // u64 at 80
    want.extend_from_slice(&0x1000u64.to_le_bytes()); // ..88
    want.extend_from_slice(&le(11));
    want.extend_from_slice(b"AllowedCPUs\0"); // ..104
    want.extend_from_slice(b"\x02ay\0"); // ..108
    want.extend_from_slice(&le(2));
    want.extend_from_slice(&[0x03, 0x0c]); // ..114
    want.extend_from_slice(&[0; 6]); // struct at 120
    want.extend_from_slice(&le(11));
    want.extend_from_slice(b"DeviceAllow\0"); // ..136
    want.extend_from_slice(b"\x05a(ss)\0"); // ..143
    want.push(0); // array length at 144
    want.extend_from_slice(&le(24)); // elements 152..176
    want.extend_from_slice(&[0; 4]); // to 152, not counted
    want.extend_from_slice(&le(9));
    want.extend_from_slice(b"/dev/null\0"); // ..166
    want.extend_from_slice(&[0; 2]);
    want.extend_from_slice(&le(3));
    want.extend_from_slice(b"rwm\0"); // ..176
    want.extend_from_slice(&le(1));
    want.extend_from_slice(b"X\0"); // ..182
    want.extend_from_slice(b"\x01q\0"); // ..185
    want.push(0); // u16 at 186
    want.extend_from_slice(&7u16.to_le_bytes()); // ..188
    want.extend_from_slice(&[0; 4]); // struct at 192
    want.extend_from_slice(&le(4));
    want.extend_from_slice(b"PIDs\0"); // ..201
    want.extend_from_slice(b"\x02au\0"); // ..205
    want.extend_from_slice(&[0; 3]);
    want.extend_from_slice(&le(4));
    want.extend_from_slice(&le(42)); // ..216
    want.extend_from_slice(&le(1));
    want.extend_from_slice(b"Y\0"); // ..222
    want.extend_from_slice(b"\x01x\0"); // ..225
    want.extend_from_slice(&[0; 7]); // i64 at 232
    want.extend_from_slice(&[0xff; 8]); // ..240
    want.extend_from_slice(&le(0)); // a(sa(sv)): empty
    want.extend_from_slice(&[0; 4]); // its padding to 8, present when empty
    assert_eq!(body.w.buf, want);

    // The header names the body's signature and length.
    let msg = method_call(5, SD_TEST, "/p", "i.f", "StartTransientUnit", &body);
    let header = msg.len() - want.len();
    assert_eq!(header % 8, 0);
    assert_eq!(&msg[header..], &want[..]);
    assert_eq!(msg[4..8], le(want.len() as u32));
    let sig = b"\x08\x01g\x00\x10ssa(sv)a(sa(sv))\0";
    assert!(msg.windows(sig.len()).any(|w| w == sig));
    let parsed = Message::parse(&msg).unwrap();
    assert_eq!(
        (parsed.kind, parsed.serial, parsed.member.as_str()),
        (METHOD_CALL, 5, "StartTransientUnit")
    );
    assert_eq!(parsed.signature, "ssa(sv)a(sa(sv))");
}

const SD_TEST: &str = "org.freedesktop.systemd1";

#[test]
fn string_lists_and_doubles_marshal() {
    let mut w = Writer::default();
    w.u8(1);
    w.variant(&Value::Strs(vec!["a".into(), "bc".into()]));
    w.variant(&Value::Double(1.5f64.to_bits()));
    let mut want = vec![1, 2, b'a', b's', 0];
    want.extend_from_slice(&[0; 3]); // array length at 8
    want.extend_from_slice(&le(15)); // elements 12..27
    want.extend_from_slice(&le(1));
    want.extend_from_slice(b"a\0\0\0"); // 16..22, pad
    want.extend_from_slice(&le(2));
    want.extend_from_slice(b"bc\0"); // ..29
    want.extend_from_slice(b"\x01d\0\0\0"); // ..30, f64 at 32
    want.extend_from_slice(&1.5f64.to_bits().to_le_bytes());
    assert_eq!(w.buf, want);
}

#[test]
fn an_error_reply_parses_to_its_name_and_text() {
    // ERROR, reply to serial 2, ERROR_NAME, SIGNATURE "s", by hand.
    let name = "org.freedesktop.systemd1.UnitExists"; // 35 bytes
    let text = "Unit x.scope already exists."; // 28 bytes
    let mut m = Vec::new();
    m.extend_from_slice(b"l\x03\x01\x01");
    m.extend_from_slice(&le(4 + 28 + 1));
    m.extend_from_slice(&le(9)); // serial
    m.extend_from_slice(&le(63)); // fields 16..79
    m.extend_from_slice(b"\x04\x01s\x00");
    m.extend_from_slice(&le(35));
    m.extend_from_slice(name.as_bytes());
    m.extend_from_slice(b"\0\0\0\0\0"); // 24..60, pad to 64
    m.extend_from_slice(b"\x05\x01u\x00");
    m.extend_from_slice(&le(2)); // ..72
    m.extend_from_slice(b"\x08\x01g\x00\x01s\0"); // ..79
    m.push(0); // the header padded to 80
    assert_eq!(m.len(), 80);
    m.extend_from_slice(&le(28));
    m.extend_from_slice(text.as_bytes());
    m.push(0);
    let msg = Message::parse(&m).unwrap();
    assert_eq!(
        (msg.kind, msg.serial, msg.reply_serial),
        (ERROR, 9, Some(2))
    );
    let e = msg.to_error();
    assert_eq!((e.name.as_str(), e.message.as_str()), (name, text));
    assert!(!e.timed_out);
    // Truncated: an error, not a panic.
    for cut in [1, 16, 60, 90, m.len() - 1] {
        assert!(Message::parse(&m[..cut]).is_err(), "cut at {cut}");
    }
}

/// A message built with our Writer (for the fake bus's replies).
fn message(kind: u8, serial: u32, fields: &[(u8, &str, &str)], body: &Body) -> Vec<u8> {
    let mut w = Writer::default();
    w.buf.extend_from_slice(&[b'l', kind, 0, 1]);
    w.u32(body.w.buf.len() as u32);
    w.u32(serial);
    w.array(8, |w| {
        for (code, sig, value) in fields {
            w.pad(8);
            w.u8(*code);
            w.sig(sig);
            match *sig {
                "u" => w.u32(value.parse().unwrap()),
                "g" => w.sig(value),
                _ => w.str(value),
            }
        }
        if !body.sig.is_empty() {
            w.pad(8);
            w.u8(8);
            w.sig("g");
            w.sig(&body.sig);
        }
    });
    w.pad(8);
    w.buf.extend_from_slice(&body.w.buf);
    w.buf
}

fn reply(serial: u32, to: u32, body: Body) -> Vec<u8> {
    message(METHOD_RETURN, serial, &[(5, "u", &to.to_string())], &body)
}

fn job_removed(serial: u32, id: u32, job: &str, result: &str) -> Vec<u8> {
    let mut body = Body::default();
    body.sig.push('u');
    body.w.u32(id);
    body.sig.push('o');
    body.w.str(job);
    let body = body.str("x.scope").str(result);
    let fields = [
        (1, "o", "/org/freedesktop/systemd1"),
        (2, "s", "org.freedesktop.systemd1.Manager"),
        (3, "s", "JobRemoved"),
    ];
    message(SIGNAL, serial, &fields, &body)
}

#[test]
fn a_signal_parses() {
    let m = Message::parse(&job_removed(
        3,
        7,
        "/org/freedesktop/systemd1/job/7",
        "done",
    ))
    .unwrap();
    assert_eq!(
        (m.kind, m.member.as_str(), m.signature.as_str()),
        (SIGNAL, "JobRemoved", "uoss")
    );
    let mut a = m.args();
    assert_eq!(a.u32().unwrap(), 7);
    assert_eq!(a.str().unwrap(), "/org/freedesktop/systemd1/job/7");
    assert_eq!(a.str().unwrap(), "x.scope");
    assert_eq!(a.str().unwrap(), "done");
}

/// The bus end of a socketpair: authentication, then each method call
/// handed to `answer`, which returns the bytes to send back.
fn fake_bus(
    mut answer: impl FnMut(&Message) -> Vec<Vec<u8>> + Send + 'static,
) -> (UnixStream, std::thread::JoinHandle<Vec<Message>>) {
    let (client, server) = UnixStream::pair().unwrap();
    let bus = std::thread::spawn(move || {
        let mut c = Conn {
            stream: server,
            deadline: Instant::now() + Duration::from_secs(10),
            serial: 0,
            signals: Default::default(),
        };
        let mut auth = Vec::new();
        while !auth.ends_with(b"\r\n") {
            let mut b = [0u8; 1];
            c.read_exact(&mut b).unwrap();
            auth.push(b[0]);
        }
        let hex: String = nix::unistd::geteuid()
            .as_raw()
            .to_string()
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(auth, format!("\0AUTH EXTERNAL {hex}\r\n").as_bytes());
        c.send(b"OK 0123456789abcdef\r\n").unwrap();
        let mut begin = [0u8; 7];
        c.read_exact(&mut begin).unwrap();
        assert_eq!(&begin, b"BEGIN\r\n");
        let mut calls = Vec::new();
        while let Ok(m) = c.read_message() {
            for bytes in answer(&m) {
                c.send(&bytes).unwrap();
            }
            calls.push(m);
        }
        calls
    });
    (client, bus)
}

#[test]
fn a_job_that_ends_before_its_reply_is_not_missed() {
    let job = "/org/freedesktop/systemd1/job/7";
    let (client, bus) = fake_bus(move |m| match m.member.as_str() {
        "Hello" => vec![reply(1, m.serial, Body::default().str(":1.5"))],
        "Get" => {
            let mut body = Body::default();
            body.sig.push('v');
            body.w.sig("s");
            body.w.str("243.1");
            vec![reply(2, m.serial, body)]
        }
        "StartTransientUnit" => {
            let mut body = Body::default();
            body.sig.push('o');
            body.w.str(job);
            vec![
                // Another job's end, then ours, both before the reply.
                job_removed(3, 6, "/org/freedesktop/systemd1/job/6", "done"),
                job_removed(4, 7, job, "failed"),
                reply(5, m.serial, body),
            ]
        }
        _ => vec![reply(9, m.serial, Body::default())],
    });
    let mut conn = Conn::open(client, Instant::now() + Duration::from_secs(10)).unwrap();
    let props = [
        prop("Delegate", Value::Bool(true)),
        prop("AllowedCPUs", Value::Bytes(vec![1])),
        prop("CPUQuotaPeriodUSec", Value::U64(100_000)),
    ];
    assert_eq!(
        bus::start_on(&mut conn, "x.scope", &props),
        Ok("failed".to_string())
    );
    drop(conn);
    let calls = bus.join().unwrap();
    let members: Vec<&str> = calls.iter().map(|m| m.member.as_str()).collect();
    assert_eq!(
        members,
        [
            "Hello",
            "Get",
            "AddMatch",
            "Subscribe",
            "StartTransientUnit"
        ]
    );
    let mut a = calls[2].args();
    assert_eq!(
        a.str().unwrap(),
        "type='signal',sender='org.freedesktop.systemd1',\
         interface='org.freedesktop.systemd1.Manager',member='JobRemoved',\
         path='/org/freedesktop/systemd1'"
    );
    // systemd 243: AllowedCPUs is left out, CPUQuotaPeriodUSec sent.
    let mut a = calls[4].args();
    assert_eq!(a.str().unwrap(), "x.scope");
    assert_eq!(a.str().unwrap(), "replace");
    let props_len = a.u32().unwrap();
    a.align(8).unwrap();
    let start = a.pos;
    let mut names = Vec::new();
    while a.pos < start + props_len as usize {
        a.align(8).unwrap();
        names.push(a.str().unwrap());
        let sig = a.sig().unwrap();
        match sig.as_str() {
            "b" => drop(a.u32().unwrap()),
            "t" => {
                a.align(8).unwrap();
                a.take(8).unwrap();
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(names, ["Delegate", "CPUQuotaPeriodUSec"]);
}

#[test]
fn an_error_reply_fails_the_call_with_its_name() {
    let (client, bus) = fake_bus(|m| match m.member.as_str() {
        "Hello" => vec![reply(1, m.serial, Body::default().str(":1.5"))],
        _ => {
            let body = Body::default().str("Unit x.scope not loaded.");
            let fields = [
                (4, "s", "org.freedesktop.systemd1.NoSuchUnit"),
                (5, "u", &*m.serial.to_string()),
            ];
            vec![message(ERROR, 2, &fields, &body)]
        }
    });
    let mut conn = Conn::open(client, Instant::now() + Duration::from_secs(10)).unwrap();
    let e = conn
        .call(
            SD_TEST,
            "/p",
            "i.f",
            "ResetFailedUnit",
            Body::default().str("x.scope"),
        )
        .unwrap_err();
    assert_eq!(e.name, "org.freedesktop.systemd1.NoSuchUnit");
    assert_eq!(e.message, "Unit x.scope not loaded.");
    drop(conn);
    bus.join().unwrap();
}

#[test]
fn a_bus_that_does_not_answer_times_out() {
    let (client, server) = UnixStream::pair().unwrap();
    let t = Instant::now();
    let e = match Conn::open(client, t + Duration::from_millis(200)) {
        Ok(_) => panic!("authenticated with a silent bus"),
        Err(e) => e,
    };
    assert!(e.timed_out, "{e:?}");
    assert!(t.elapsed() >= Duration::from_millis(200));
    assert!(t.elapsed() < Duration::from_secs(5));
    // And a bus that goes away is an error, not a timeout.
    drop(server);
    let (client, server) = UnixStream::pair().unwrap();
    drop(server);
    let e = match Conn::open(client, Instant::now() + Duration::from_secs(5)) {
        Ok(_) => panic!("authenticated with no bus"),
        Err(e) => e,
    };
    assert!(!e.timed_out, "{e:?}");
}

#[test]
fn bus_address_escapes_are_decoded() {
    assert_eq!(
        unescape("/run/dbus/system%5fbus_socket"),
        "/run/dbus/system_bus_socket"
    );
    assert_eq!(unescape("/a%2"), "/a%2");
}
