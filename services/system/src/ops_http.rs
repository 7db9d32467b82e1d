//! A plain-HTTP/1.1 `GET` of a service's operations listener (`/metrics`,
//! `/readyz`), with a deadline: what `liaison status` and the operator
//! console read. Loopback or a private network only, as the listeners are;
//! the answer must carry its length (the listeners' answers do) or end
//! with the connection.

use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Largest answer read (a `/metrics` page is a few kilobytes).
const MAX_ANSWER: u64 = 4 * 1024 * 1024;

/// `GET http://{addr}{path}`: the status code and the body.
pub async fn get(addr: &str, path: &str, timeout: Duration) -> Result<(u16, String), String> {
    let ask = async {
        let mut stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("no answer: {e}"))?;
        stream
            .write_all(
                format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .await
            .map_err(|e| e.to_string())?;
        let mut reply = Vec::new();
        stream
            .take(MAX_ANSWER)
            .read_to_end(&mut reply)
            .await
            .map_err(|e| e.to_string())?;
        let reply = String::from_utf8_lossy(&reply);
        let (head, body) = reply
            .split_once("\r\n\r\n")
            .ok_or_else(|| "not an HTTP answer".to_owned())?;
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("not an HTTP status line: {:?}", head.lines().next()))?;
        Ok((status, body.to_owned()))
    };
    tokio::time::timeout(timeout, ask)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {} s", timeout.as_secs())))
}
