//! A real SMTP server on loopback for the tests of the SMTP transport, the engine's outage test
//! and the binary's process tests: a small RFC 5321 server (EHLO, HELO, AUTH PLAIN, MAIL, RCPT,
//! DATA, RSET, NOOP, QUIT) that can accept, refuse a recipient (550), defer after the data (451),
//! answer MAIL with a temporary failure (451), refuse credentials (535) or never answer. It
//! records each message with its envelope, and the Message-IDs of the accepted ones with how many
//! times each arrived.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mode {
    Accept,
    RejectRecipient,
    DeferAfterData,
    /// Answers MAIL with a temporary failure (451), as a server short of resources does.
    Busy,
    /// Accepts the connection and never says a word, until the client hangs up.
    Stall,
    /// Offers AUTH PLAIN and accepts only these credentials.
    RequireAuth(&'static str, &'static str),
}

#[derive(Clone, Debug)]
pub struct Delivery {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub data: String,
    pub accepted: bool,
}

/// Message-IDs accepted, with how many times each arrived.
pub type Received = Arc<Mutex<HashMap<String, usize>>>;

#[derive(Clone)]
pub struct SmtpServer {
    pub addr: SocketAddr,
    mode: Arc<Mutex<Mode>>,
    /// Whether each message is kept whole (a sink for thousands of messages keeps only their
    /// Message-IDs).
    keep_messages: bool,
    deliveries: Arc<Mutex<Vec<Delivery>>>,
    received: Received,
    /// Connections accepted.
    pub connections: Arc<AtomicUsize>,
    /// The credentials of every AUTH, as decoded.
    pub logins: Arc<Mutex<Vec<(String, String)>>>,
}

/// A server that accepts everything on a free port and records only the Message-IDs: the port
/// and those IDs.
pub async fn smtp_sink() -> (u16, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = SmtpServer::serve(listener, Mode::Accept, false);
    (server.addr.port(), server.received())
}

impl SmtpServer {
    /// A server on a free port.
    pub async fn start(mode: Mode) -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        SmtpServer::serve(listener, mode, true)
    }

    /// A server on `port`, which a test chose beforehand (to find it refused until then).
    pub async fn start_on(port: u16, mode: Mode) -> SmtpServer {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        SmtpServer::serve(listener, mode, true)
    }

    fn serve(listener: TcpListener, mode: Mode, keep_messages: bool) -> SmtpServer {
        let server = SmtpServer {
            addr: listener.local_addr().unwrap(),
            mode: Arc::new(Mutex::new(mode)),
            keep_messages,
            deliveries: Arc::default(),
            received: Arc::default(),
            connections: Arc::default(),
            logins: Arc::default(),
        };
        let state = server.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                state.connections.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(state.clone().session(stream));
            }
        });
        server
    }

    pub fn mode(&self) -> Mode {
        *self.mode.lock().unwrap()
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    /// Every message received (accepted or not), in order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.deliveries.lock().unwrap().clone()
    }

    /// The Message-IDs of the messages accepted, with how many times each arrived.
    pub fn received(&self) -> Received {
        self.received.clone()
    }

    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    async fn session(self, mut stream: TcpStream) {
        if self.mode() == Mode::Stall {
            // Holds the connection without a word until the client gives up and closes it.
            let mut buf = [0u8; 1024];
            while stream.read(&mut buf).await.is_ok_and(|n| n > 0) {}
            return;
        }
        let (read, mut write) = stream.into_split();
        let mut read = BufReader::new(read);
        let mut reply = async |text: &str| {
            let _ = write.write_all(format!("{text}\r\n").as_bytes()).await;
        };
        reply("220 test.local ESMTP").await;
        let (mut mail_from, mut rcpt_to) = (String::new(), Vec::new());
        let mut line = String::new();
        loop {
            line.clear();
            if read.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            let command = line.trim_end().to_string();
            let verb = command
                .split(' ')
                .next()
                .unwrap_or_default()
                .to_ascii_uppercase();
            match verb.as_str() {
                "EHLO" => {
                    let auth = matches!(self.mode(), Mode::RequireAuth(..));
                    reply("250-test.local").await;
                    reply("250-8BITMIME").await;
                    if auth {
                        reply("250-AUTH PLAIN").await;
                    }
                    reply("250 SIZE 10000000").await;
                }
                "HELO" => reply("250 test.local").await,
                "AUTH" => {
                    let initial = command.split(' ').nth(2).unwrap_or_default();
                    let decoded = String::from_utf8(base64_decode(initial)).unwrap_or_default();
                    let mut fields = decoded.split('\0').skip(1);
                    let user = fields.next().unwrap_or_default().to_string();
                    let pass = fields.next().unwrap_or_default().to_string();
                    self.logins
                        .lock()
                        .unwrap()
                        .push((user.clone(), pass.clone()));
                    match self.mode() {
                        Mode::RequireAuth(u, p) if u == user && p == pass => {
                            reply("235 2.7.0 Authentication successful").await
                        }
                        _ => reply("535 5.7.8 Authentication credentials invalid").await,
                    }
                }
                "MAIL" if self.mode() == Mode::Busy => {
                    reply("451 4.3.0 temporarily unable to accept mail").await
                }
                "MAIL" => {
                    mail_from = command.get(10..).unwrap_or_default().to_string();
                    rcpt_to.clear();
                    reply("250 2.1.0 Ok").await;
                }
                "RCPT" => {
                    if self.mode() == Mode::RejectRecipient {
                        reply("550 5.1.1 Recipient address rejected: User unknown").await;
                    } else {
                        rcpt_to.push(command.get(8..).unwrap_or_default().to_string());
                        reply("250 2.1.5 Ok").await;
                    }
                }
                "DATA" => {
                    reply("354 End data with <CR><LF>.<CR><LF>").await;
                    let mut data = String::new();
                    loop {
                        line.clear();
                        if read.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        if line == ".\r\n" {
                            break;
                        }
                        data.push_str(line.strip_prefix('.').unwrap_or(&line));
                    }
                    let accepted = self.mode() != Mode::DeferAfterData;
                    if accepted && let Some(id) = message_id(&data) {
                        *self.received.lock().unwrap().entry(id).or_default() += 1;
                    }
                    if self.keep_messages {
                        self.deliveries.lock().unwrap().push(Delivery {
                            mail_from: mail_from.clone(),
                            rcpt_to: rcpt_to.clone(),
                            data,
                            accepted,
                        });
                    }
                    if accepted {
                        reply("250 2.0.0 Ok: queued as 4F2A").await;
                    } else {
                        reply("451 4.7.1 Greylisted, please try again later").await;
                    }
                }
                "RSET" | "NOOP" => reply("250 2.0.0 Ok").await,
                "QUIT" => {
                    reply("221 2.0.0 Bye").await;
                    return;
                }
                _ => reply("502 5.5.2 Command not recognized").await,
            }
        }
    }
}

/// The first `Message-ID:` line's value.
fn message_id(data: &str) -> Option<String> {
    data.split("\r\n")
        .find(|line| line.to_ascii_lowercase().starts_with("message-id:"))
        .map(|line| line[11..].trim().to_string())
}

/// Standard base64 (RFC 4648), as AUTH PLAIN and MIME bodies carry it; padding and line
/// breaks ignored.
pub fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let digits: Vec<u8> = text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
        .map(value)
        .collect();
    let mut out = Vec::new();
    for chunk in digits.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, d)| n | u32::from(*d) << (18 - 6 * i));
        out.extend(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}
