//! A DynamoDB registry whose writes fail, through `ec2-iid serve`: a claim whose write never
//! reached the table answers 503 and leaves nothing that refuses the retry; a claim whose
//! write was recorded but whose answers were lost is found by reading the record back, and
//! answers 200.
//!
//! Between the server and moto sits a loopback proxy that forwards every AWS call but, when
//! armed, drops `PutItem`s: before forwarding them (nothing written) or after (written, the
//! answer lost). The SDK's own retries of a lost `PutItem` meet the record they wrote.
#![cfg(test)] // clippy.toml says why

mod harness;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use ec2_iid_test_support::moto::{Moto, OWN_ACCOUNT};
use harness::{Server, ec2_client, launch, now, rsa2048, sample, scratch_dir};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy does with a `PutItem`.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
enum Fault {
    /// Forwards it.
    None,
    /// Closes the connection without forwarding it: nothing is written.
    DropRequest,
    /// Forwards it and closes the connection without its answer: written, answer lost.
    DropAnswer,
}

/// A loopback HTTP/1.1 proxy to `upstream`, one request per connection.
struct Proxy {
    url: String,
    fault: Arc<Mutex<Fault>>,
    put_items: Arc<AtomicUsize>,
}

impl Proxy {
    async fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.trim_start_matches("http://").to_owned();
        let fault = Arc::new(Mutex::new(Fault::None));
        let put_items = Arc::new(AtomicUsize::new(0));
        let (f, p) = (Arc::clone(&fault), Arc::clone(&put_items));
        tokio::spawn(async move {
            loop {
                let (client, _) = listener.accept().await.unwrap();
                let (upstream, f, p) = (upstream.clone(), Arc::clone(&f), Arc::clone(&p));
                tokio::spawn(async move { relay(client, &upstream, &f, &p).await });
            }
        });
        Self {
            url,
            fault,
            put_items,
        }
    }

    fn set(&self, fault: Fault) {
        *self.fault.lock().unwrap() = fault;
    }

    fn put_items(&self) -> usize {
        self.put_items.load(Ordering::SeqCst)
    }
}

/// Relays one request (with `Connection: close`, so the answer ends at the end of the stream).
async fn relay(
    mut client: TcpStream,
    upstream: &str,
    fault: &Mutex<Fault>,
    put_items: &AtomicUsize,
) {
    let Some((head, body)) = read_request(&mut client).await else {
        return;
    };
    let put_item = head
        .to_ascii_lowercase()
        .contains("x-amz-target: dynamodb_20120810.putitem");
    let fault = *fault.lock().unwrap();
    if put_item {
        put_items.fetch_add(1, Ordering::SeqCst);
        if fault == Fault::DropRequest {
            return;
        }
    }
    let (request_line, headers) = head.split_once("\r\n").unwrap();
    let mut server = TcpStream::connect(upstream).await.unwrap();
    let forwarded = format!("{request_line}\r\nConnection: close\r\n{headers}");
    server.write_all(forwarded.as_bytes()).await.unwrap();
    server.write_all(&body).await.unwrap();
    let mut answer = Vec::new();
    server.read_to_end(&mut answer).await.unwrap();
    if put_item && fault == Fault::DropAnswer {
        return;
    }
    let _ = client.write_all(&answer).await;
}

/// One request's head (through the blank line) and its `Content-Length` body.
async fn read_request(stream: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buffer = Vec::new();
    let mut chunk = [0; 8192];
    let end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buffer[..end].to_vec()).unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().unwrap())
        })
        .unwrap_or(0);
    let mut body = buffer[end..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some((head, body))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_dynamodb_write_never_blocks_the_retry() {
    let Some(moto) = Moto::start_with_atomic_put_item() else {
        return;
    };
    let proxy = Proxy::start(&moto.url).await;
    let ec2 = ec2_client(&moto.url).await;
    let instances = launch(&ec2, 2).await;
    let server = Server::start(
        &scratch_dir("lost-answers"),
        "serve",
        &proxy.url,
        &["--registry", "dynamodb:lost-answers", "--timeout", "5"],
    );

    // The write never reaches the table: 503, and the retry joins.
    proxy.set(Fault::DropRequest);
    let document = rsa2048(OWN_ACCOUNT, &instances[0], now());
    let (status, body) = server.join(document.as_bytes()).await;
    assert_eq!(status, 503, "{body}");
    server.refused(&body, "registry_unavailable", "registry failed");
    assert!(proxy.put_items() >= 1);
    proxy.set(Fault::None);
    let (status, body) = server.join(document.as_bytes()).await;
    assert_eq!(status, 200, "the retry joins: {body}");

    // The write is recorded, every answer to it lost: the record read back says it joined.
    proxy.set(Fault::DropAnswer);
    let before = proxy.put_items();
    let document = rsa2048(OWN_ACCOUNT, &instances[1], now());
    let (status, body) = server.join(document.as_bytes()).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        proxy.put_items() > before,
        "the PutItem went through the proxy"
    );
    proxy.set(Fault::None);
    // And it joined once: a replay is refused (before any lookup).
    let (status, body) = server.join(document.as_bytes()).await;
    assert_eq!(status, 403, "{body}");
    server.refused(&body, "already_joined", "has already joined");
    let metrics = server.metrics().await;
    assert_eq!(
        sample(&metrics, "ec2_iid_joins_total{outcome=\"joined\"}"),
        2.0
    );
    assert_eq!(
        sample(&metrics, "ec2_iid_describe_instances_calls_total"),
        3.0,
        "the 503, the retry and the lost answer: no call for the replay"
    );
}
