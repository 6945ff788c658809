//! `ec2-iid serve` (built with `--features aws`) on SIGTERM and SIGINT, real signals sent with
//! kill(1): it stops accepting, answers the request in flight and exits 0 within
//! `--shutdown-grace`.
#![cfg(test)] // clippy.toml says why

mod harness;

use std::time::{Duration, Instant};

use ec2_iid_test_support::moto::{Moto, OWN_ACCOUNT};
use harness::{Server, black_hole, ec2_client, launch, now, rsa2048, scratch_dir, until_closed};
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;

/// A join whose body is half sent when the signal comes: it is answered 200 once the rest
/// arrives, while new connections are refused; then the server exits 0.
async fn finishes_the_join_in_flight(signal: &str) {
    let Some(moto) = Moto::start() else { return };
    let ec2 = ec2_client(&moto.url).await;
    let instance = launch(&ec2, 1).await.remove(0);
    let dir = scratch_dir(&format!("signals-{signal}"));
    let mut server = Server::start(&dir, "serve", &moto.url, &["--shutdown-grace", "5"]);
    let idle = TcpStream::connect(&server.addr).await.unwrap();

    let document = rsa2048(OWN_ACCOUNT, &instance, now());
    let (first, rest) = document.as_bytes().split_at(document.len() / 2);
    let mut in_flight = TcpStream::connect(&server.addr).await.unwrap();
    let head = format!(
        "POST /join HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        document.len()
    );
    in_flight.write_all(head.as_bytes()).await.unwrap();
    in_flight.write_all(first).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let signalled = Instant::now();
    server.signal(signal);
    // New connections are refused once the listener is closed.
    let mut refused = false;
    for _ in 0..50 {
        if TcpStream::connect(&server.addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused, "still accepting 1 s after SIG{signal}");
    // The idle connection is closed, the join in flight answered.
    let mut idle = idle;
    until_closed(&mut idle, Duration::from_secs(1)).await;
    in_flight.write_all(rest).await.unwrap();
    let answer = until_closed(&mut in_flight, Duration::from_secs(5)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(&instance), "{answer}");
    assert_eq!(server.wait_exit(Duration::from_secs(5)), Some(0));
    assert!(signalled.elapsed() < Duration::from_secs(5));
    let log = server.log();
    assert!(log.contains(&format!("SIG{signal}")), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_finishes_the_join_in_flight_and_exits_0() {
    finishes_the_join_in_flight("TERM").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigint_finishes_the_join_in_flight_and_exits_0() {
    finishes_the_join_in_flight("INT").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_past_the_grace_is_cut_and_the_exit_is_0() {
    // EC2 never answers: the join stays in flight past --shutdown-grace 1.
    let (hole_url, held) = black_hole().await;
    let mut server = Server::start(
        &scratch_dir("signals-grace"),
        "serve",
        &hole_url,
        &["--shutdown-grace", "1", "--timeout", "30"],
    );
    let mut in_flight = TcpStream::connect(&server.addr).await.unwrap();
    let document = rsa2048(OWN_ACCOUNT, "i-0123456789abcdef0", now());
    let head = format!(
        "POST /join HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{document}",
        document.len()
    );
    in_flight.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let signalled = Instant::now();
    server.signal("TERM");
    assert_eq!(server.wait_exit(Duration::from_secs(4)), Some(0));
    let took = signalled.elapsed();
    assert!(
        (Duration::from_secs(1)..Duration::from_secs(3)).contains(&took),
        "{took:?}"
    );
    let answer = until_closed(&mut in_flight, Duration::from_secs(1)).await;
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
    assert!(
        server.log().contains("--shutdown-grace"),
        "{}",
        server.log()
    );
    held.abort();
}
