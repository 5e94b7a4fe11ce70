//! Local servers that receive what the binary under test delivers: an HTTP server for the alert
//! webhook and an SMTP server for alert e-mails, each recording what arrived.

// each test binary that includes `job_binary` uses a different subset
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// An HTTP server on 127.0.0.1 that answers every request with `status` and records it.
pub struct HttpReceiver {
    /// `http://127.0.0.1:PORT/hooks/alerts`.
    pub url: String,
    requests: Arc<Mutex<Vec<HttpRequest>>>,
}

/// A request the [`HttpReceiver`] received.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    /// `POST /hooks/alerts`.
    pub request_line: String,
    pub body: String,
}

impl HttpReceiver {
    /// Starts a server answering `status` (such as `200 OK`) to every request, for the rest of
    /// the test.
    pub fn start(status: &'static str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hooks/alerts", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&requests);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let mut stream = stream.unwrap();
                let request = read_http_request(&mut stream);
                // recorded before the answer: once the client has it, the request is listed
                recorded.lock().unwrap().push(request);
                let answer =
                    format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                let _ = stream.write_all(answer.as_bytes());
            }
        });
        Self { url, requests }
    }

    /// The requests received so far.
    pub fn requests(&self) -> Vec<HttpRequest> {
        self.requests.lock().unwrap().clone()
    }
}

fn read_http_request(stream: &mut TcpStream) -> HttpRequest {
    let mut request = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let n = stream.read(&mut buffer).unwrap();
        assert!(n > 0, "connection closed before the request was whole");
        request.extend_from_slice(&buffer[..n]);
        let text = String::from_utf8_lossy(&request).into_owned();
        let Some(end) = text.find("\r\n\r\n") else {
            continue;
        };
        let length: usize = text[..end]
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().unwrap())
            })
            .unwrap_or(0);
        if request.len() >= end + 4 + length {
            return HttpRequest {
                request_line: text.lines().next().unwrap_or("").to_string(),
                body: String::from_utf8_lossy(&request[end + 4..end + 4 + length]).into_owned(),
            };
        }
    }
}

/// A minimal SMTP server on 127.0.0.1 (no TLS, no login) that accepts every message and records
/// its envelope and data.
pub struct SmtpReceiver {
    pub port: u16,
    mails: Arc<Mutex<Vec<Mail>>>,
}

/// A message the [`SmtpReceiver`] accepted.
#[derive(Debug, Clone, Default)]
pub struct Mail {
    /// The `MAIL FROM:` argument, such as `<jobs@example.com>`.
    pub from: String,
    /// The `RCPT TO:` arguments.
    pub to: Vec<String>,
    /// The message (headers and body) as sent, lines joined with `\r\n`, without the final
    /// `.` line.
    pub data: String,
}

impl Mail {
    /// The value of header `name` (unfolded), if the message has it.
    pub fn header(&self, name: &str) -> Option<String> {
        let (head, _) = self.data.split_once("\r\n\r\n")?;
        let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
        unfolded.split("\r\n").find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name)
                .then(|| value.trim().to_string())
        })
    }

    /// The body, decoded when it is quoted-printable (as lettre sends lines of 76 characters
    /// or more), with `\n` line ends.
    pub fn body(&self) -> String {
        let (_, body) = self.data.split_once("\r\n\r\n").unwrap_or(("", ""));
        let quoted = self
            .header("content-transfer-encoding")
            .is_some_and(|e| e.eq_ignore_ascii_case("quoted-printable"));
        let body = if quoted {
            decode_quoted_printable(body)
        } else {
            body.to_string()
        };
        body.replace("\r\n", "\n")
    }
}

/// Quoted-printable (RFC 2045, 6.7): `=` at a line end joins it to the next, `=XX` is a byte.
fn decode_quoted_printable(text: &str) -> String {
    let joined = text.replace("=\r\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

impl SmtpReceiver {
    /// Starts the server for the rest of the test.
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mails = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&mails);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                serve_smtp(stream.unwrap(), &recorded);
            }
        });
        Self { port, mails }
    }

    /// The messages accepted so far.
    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }
}

/// One SMTP session: greet 220, EHLO 250, MAIL and RCPT 250, DATA 354 then 250 after the `.`,
/// QUIT 221.
fn serve_smtp(stream: TcpStream, mails: &Mutex<Vec<Mail>>) {
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let mut reply = |line: &str| {
        writer.write_all(format!("{line}\r\n").as_bytes()).unwrap();
    };
    reply("220 localhost test SMTP");
    let mut mail = Mail::default();
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap() == 0 {
            return;
        }
        let command = line.trim_end().to_string();
        let verb = command
            .split([' ', ':'])
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" | "HELO" => reply("250 localhost"),
            "MAIL" => {
                mail.from = command["MAIL FROM:".len()..].trim().to_string();
                reply("250 OK");
            }
            "RCPT" => {
                mail.to.push(command["RCPT TO:".len()..].trim().to_string());
                reply("250 OK");
            }
            "DATA" => {
                reply("354 end data with <CR><LF>.<CR><LF>");
                let mut data = Vec::new();
                loop {
                    line.clear();
                    assert!(reader.read_line(&mut line).unwrap() > 0, "DATA cut short");
                    let text = line.trim_end_matches(['\r', '\n']);
                    if text == "." {
                        break;
                    }
                    // a leading dot is doubled on the wire (RFC 5321, 4.5.2)
                    data.push(text.strip_prefix('.').unwrap_or(text).to_string());
                }
                mail.data = data.join("\r\n");
                mails.lock().unwrap().push(std::mem::take(&mut mail));
                reply("250 OK queued");
            }
            "RSET" | "NOOP" => reply("250 OK"),
            "QUIT" => {
                reply("221 bye");
                return;
            }
            _ => reply("502 command not implemented"),
        }
    }
}
