//! `rappel serve` takes its connection limits from `RAPPEL_*` variables (issue 13, row 10): a
//! connection that sends no request head is closed after `RAPPEL_HEADER_TIMEOUT_SECONDS`, and
//! past `RAPPEL_MAX_CONNECTIONS` a new connection waits for a free one. A value out of range is
//! refused at start-up, naming the variable.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn temp_dir() -> std::path::PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!("rappel-serve-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn rappel(dir: &std::path::Path, port: u16, env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rappel"));
    command
        .args([
            "serve",
            "--no-worker",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .env(
            "RAPPEL_DATABASE_URL",
            format!("sqlite://{}/rappel.db", dir.display()),
        )
        .env("RAPPEL_LOG", "warn")
        .envs(env.iter().copied())
        .current_dir(dir)
        .stdout(Stdio::null());
    command
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `GET /health` on a fresh connection; the status, or `None` when nothing came back in time.
fn health(port: u16, within: Duration) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(within)).unwrap();
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: rappel\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    let head = String::from_utf8_lossy(&raw);
    head.split(' ').nth(1)?.parse().ok()
}

#[test]
fn the_header_timeout_and_the_connection_cap_come_from_the_environment() {
    let dir = temp_dir();
    let port = free_port();
    let _server = Server(
        rappel(
            &dir,
            port,
            &[
                ("RAPPEL_HEADER_TIMEOUT_SECONDS", "1"),
                ("RAPPEL_MAX_CONNECTIONS", "1"),
            ],
        )
        .stderr(Stdio::inherit())
        .spawn()
        .expect("rappel starts"),
    );
    let start = Instant::now();
    while health(port, Duration::from_secs(2)) != Some(200) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "rappel serve did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The only connection slot is taken by a client that sends half a request head…
    let mut slow = TcpStream::connect(("127.0.0.1", port)).unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: rap")
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    // …so another client waits, and is served once the slow one has been cut off after 1 s.
    let waited = Instant::now();
    assert_eq!(health(port, Duration::from_secs(5)), Some(200));
    let waited = waited.elapsed();
    assert!(
        waited >= Duration::from_millis(500),
        "served after {waited:?}: the cap did not hold"
    );
    slow.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut rest = Vec::new();
    assert_eq!(
        slow.read_to_end(&mut rest).map(|_| ()).ok(),
        Some(()),
        "the slow connection was closed"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_limit_out_of_range_is_refused_at_start_up_with_its_name() {
    let dir = temp_dir();
    for (name, value) in [
        ("RAPPEL_HEADER_TIMEOUT_SECONDS", "0"),
        ("RAPPEL_REQUEST_TIMEOUT_SECONDS", "soon"),
        ("RAPPEL_MAX_CONNECTIONS", "0"),
    ] {
        let out = rappel(&dir, free_port(), &[(name, value)])
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}={value}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(name), "{stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
