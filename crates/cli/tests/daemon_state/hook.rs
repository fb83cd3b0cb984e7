//! A webhook receiver for the daemon's tests: a loopback port that answers 200 to each
//! request and hands it to the test as received, bytes and all, so that the signature can
//! be checked on exactly what came over the wire.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

/// One HTTP request as the receiver read it.
pub struct Request {
    /// Header names lower-cased, values trimmed.
    headers: Vec<(String, String)>,
    /// The body, exactly as received.
    pub body: Vec<u8>,
}

impl Request {
    /// The value of header `name` (lower case), if it was sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A webhook receiver on a loopback port: answers 200 to each request and hands it on.
pub fn receiver() -> (u16, mpsc::Receiver<Request>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
            let mut reader = BufReader::new(conn.try_clone().expect("clone"));
            let mut headers = Vec::new();
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                if let Some((n, v)) = line.split_once(':') {
                    headers.push((n.trim().to_lowercase(), v.trim().to_owned()));
                }
                line.clear();
            }
            let len = headers
                .iter()
                .find(|(n, _)| n == "content-length")
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0; len];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let _ = conn
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            if tx.send(Request { headers, body }).is_err() {
                return;
            }
        }
    });
    (port, rx)
}
