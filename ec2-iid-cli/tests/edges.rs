//! `ec2-iid serve` at its edges (built with `--features aws`): slow and idle clients against
//! the timeouts and the connection cap, the cap on joins in flight, TLS with its reload on
//! SIGHUP, and the refusal of plain HTTP off loopback. The real binary on 127.0.0.1, moto for
//! the instances, short limits so that each test takes seconds.
#![cfg(test)] // clippy.toml says why

mod harness;

use std::process::Stdio;
use std::time::{Duration, Instant};

use ec2_iid_test_support::moto::{Moto, OWN_ACCOUNT};
use harness::{
    Server, black_hole, ec2_client, exchange, install_tls_pair, launch, leaf_der, now, peer_leaf,
    request, rsa2048, sample, scratch_dir, serve_command_on, tls_connect, tls_pair, until_closed,
    write_token,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// `f` answers within `limit`; its answer.
async fn within<T>(limit: Duration, what: &str, f: impl Future<Output = T>) -> T {
    let started = Instant::now();
    let answer = tokio::time::timeout(limit, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {limit:?}"));
    println!("{what}: {:?}", started.elapsed());
    answer
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_and_idle_clients_do_not_stop_answers_and_are_closed_by_their_deadlines() {
    let Some(moto) = Moto::start() else { return };
    let ec2 = ec2_client(&moto.url).await;
    let instance = launch(&ec2, 1).await.remove(0);
    let server = Server::start(
        &scratch_dir("edges-slow"),
        "serve",
        &moto.url,
        &[
            "--header-read-timeout",
            "2",
            "--body-read-timeout",
            "3",
            "--max-connections",
            "16",
        ],
    );
    let addr = server.addr.clone();

    // 13 keep-alive connections, idle after one request each.
    let mut idle = Vec::new();
    for _ in 0..13 {
        let mut stream = TcpStream::connect(&addr).await.unwrap();
        let (status, _, _) = exchange(&mut stream, "GET", "/healthz", b"").await;
        assert_eq!(status, 200);
        idle.push(stream);
    }
    // The slow clients: one silent, one sending a header line every 0.5 s, one sending a
    // 60000-byte body a byte every 0.5 s (each byte well within any per-read timeout).
    let opened = Instant::now();
    let mut silent = TcpStream::connect(&addr).await.unwrap();
    let headers = TcpStream::connect(&addr).await.unwrap();
    let body = TcpStream::connect(&addr).await.unwrap();
    let (mut headers_read, mut headers_write) = headers.into_split();
    let header_drip = tokio::spawn(async move {
        let _ = headers_write.write_all(b"GET /healthz HTTP/1.1\r\n").await;
        for i in 0..40 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let line = format!("X-Slow-{i}: 1\r\n");
            if headers_write.write_all(line.as_bytes()).await.is_err() {
                break;
            }
        }
    });
    let (mut body_read, mut body_write) = body.into_split();
    let body_drip = tokio::spawn(async move {
        let head = "POST /join HTTP/1.1\r\nHost: x\r\nContent-Length: 60000\r\n\r\n";
        let _ = body_write.write_all(head.as_bytes()).await;
        for _ in 0..40 {
            if body_write.write_all(b"A").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;

    // 16 open: the cap. New connections are still served, each in place of an idle one.
    let (status, _, body_text) = within(Duration::from_secs(1), "healthz at the cap", async {
        request(&addr, "GET", "/healthz", b"").await
    })
    .await;
    assert_eq!((status, body_text.as_str()), (200, "ok"));
    let document = rsa2048(OWN_ACCOUNT, &instance, now());
    let (status, _, answer) = within(Duration::from_secs(1), "join at the cap", async {
        request(&addr, "POST", "/join", document.as_bytes()).await
    })
    .await;
    assert_eq!(status, 200, "{answer}");

    // The silent client and the header drip: closed at the header-read deadline (2 s from
    // their connection), without an answer to the drip.
    let silent_read = until_closed(&mut silent, Duration::from_secs(4)).await;
    assert!(silent_read.is_empty(), "{silent_read:?}");
    let headers_answer = until_closed(&mut headers_read, Duration::from_secs(4)).await;
    assert!(
        !String::from_utf8_lossy(&headers_answer).contains(" 200 "),
        "{headers_answer:?}"
    );
    assert!(
        opened.elapsed() < Duration::from_secs(4),
        "{:?}",
        opened.elapsed()
    );
    // The body drip: answered 408 at the body deadline (3 s), then closed.
    let body_answer = until_closed(&mut body_read, Duration::from_secs(4)).await;
    let body_answer = String::from_utf8_lossy(&body_answer);
    assert!(body_answer.starts_with("HTTP/1.1 408"), "{body_answer}");
    assert!(
        body_answer.contains("\"error\":\"body_timeout\""),
        "{body_answer}"
    );
    let took = opened.elapsed();
    assert!(
        (Duration::from_secs(3)..Duration::from_secs(5)).contains(&took),
        "{took:?}"
    );
    assert!(
        server.log().contains("--body-read-timeout"),
        "{}",
        server.log()
    );
    header_drip.abort();
    body_drip.abort();

    // The longest idle was shed for the first new connection (which made room for the
    // second); the others are still open.
    let metrics = server.metrics().await;
    assert!(
        sample(&metrics, "ec2_iid_connections_shed_total") >= 1.0,
        "{metrics}"
    );
    let mut shed = 0;
    for stream in &mut idle {
        let mut byte = [0; 1];
        match tokio::time::timeout(Duration::from_millis(50), stream.read(&mut byte)).await {
            Ok(Ok(0) | Err(_)) => shed += 1,
            Ok(Ok(_)) => panic!("unexpected bytes on an idle connection"),
            Err(_) => {}
        }
    }
    assert!((1..=3).contains(&shed), "{shed} shed:\n{metrics}");
    let (status, _, _) = exchange(idle.last_mut().unwrap(), "GET", "/healthz", b"").await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_connection_busy_closes_the_new_one() {
    // An EC2 endpoint that accepts and never answers: every join stays in flight until
    // --timeout.
    let (hole_url, held) = black_hole().await;
    let server = Server::start(
        &scratch_dir("edges-busy"),
        "serve",
        &hole_url,
        &["--max-connections", "2", "--timeout", "3"],
    );
    let joins: Vec<_> = (0..2)
        .map(|i| {
            let (addr, document) = (
                server.addr.clone(),
                rsa2048(OWN_ACCOUNT, &format!("i-0123456789abcdef{i}"), now()),
            );
            tokio::spawn(async move { request(&addr, "POST", "/join", document.as_bytes()).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Both connections have a join in flight: a third is closed at once, unanswered.
    let mut third = TcpStream::connect(&server.addr).await.unwrap();
    let _ = third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let read = until_closed(&mut third, Duration::from_secs(1)).await;
    assert!(read.is_empty(), "{}", String::from_utf8_lossy(&read));
    for join in joins {
        let (status, _, body) = join.await.unwrap();
        assert_eq!(status, 503, "{body}");
    }
    let metrics = server.metrics().await;
    assert_eq!(
        sample(&metrics, "ec2_iid_connections_refused_total"),
        1.0,
        "{metrics}"
    );
    held.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn joins_past_the_cap_are_overloaded_at_once() {
    let (hole_url, held) = black_hole().await;
    let server = Server::start(
        &scratch_dir("edges-overloaded"),
        "serve",
        &hole_url,
        &["--max-inflight-joins", "1", "--timeout", "2"],
    );
    // A join whose body is still coming holds its connection, not the one join slot.
    let mut slow = TcpStream::connect(&server.addr).await.unwrap();
    slow.write_all(b"POST /join HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nAB")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let joins: Vec<_> = (0..6)
        .map(|i| {
            let (addr, document) = (
                server.addr.clone(),
                rsa2048(OWN_ACCOUNT, &format!("i-0123456789abcde0{i}"), now()),
            );
            tokio::spawn(async move {
                let answer = request(&addr, "POST", "/join", document.as_bytes()).await;
                (answer, Instant::now())
            })
        })
        .collect();
    let mut overloaded = 0;
    for join in joins {
        let ((status, head, body), answered) = join.await.unwrap();
        assert_eq!(status, 503, "{body}");
        let kind = serde_json::from_str::<serde_json::Value>(&body).unwrap()["error"].clone();
        if kind == "overloaded" {
            overloaded += 1;
            assert!(
                head.to_ascii_lowercase().contains("\r\nretry-after: 1"),
                "{head}"
            );
            // Answered at once, not after the join in flight.
            assert!(answered - started < Duration::from_secs(1));
            server.refused(&body, "overloaded", "--max-inflight-joins");
        } else {
            assert_eq!(kind, "timeout", "{body}");
        }
    }
    // One join had the slot (and timed out on EC2), the others were overloaded.
    assert_eq!(overloaded, 5);
    assert!(started.elapsed() < Duration::from_secs(4));
    let metrics = server.metrics().await;
    assert_eq!(
        sample(&metrics, "ec2_iid_joins_total{outcome=\"overloaded\"}"),
        f64::from(overloaded),
        "{metrics}"
    );
    held.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn https_joins_and_reloads_the_certificate_on_sighup() {
    let Some(moto) = Moto::start() else { return };
    let ec2 = ec2_client(&moto.url).await;
    let instance = launch(&ec2, 1).await.remove(0);
    let dir = scratch_dir("edges-tls");
    let tls = install_tls_pair(&dir, 1);
    let server = Server::start(
        &dir,
        "serve",
        &moto.url,
        &tls.each_ref().map(String::as_str),
    );
    let (first, second) = (tls_pair(1), tls_pair(2));

    // A join over https, the server's CA trusted.
    let mut kept = tls_connect(&server.addr, &first.ca).await.unwrap();
    assert_eq!(peer_leaf(&kept), leaf_der(&first.cert));
    let document = rsa2048(OWN_ACCOUNT, &instance, now());
    let (status, _, body) = exchange(&mut kept, "POST", "/join", document.as_bytes()).await;
    assert_eq!(status, 200, "{body}");
    let (status, _, _) = exchange(&mut kept, "GET", "/healthz", b"").await;
    assert_eq!(status, 200);

    // Plain HTTP to the TLS port gets no HTTP answer.
    let mut plain = TcpStream::connect(&server.addr).await.unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let read = until_closed(&mut plain, Duration::from_secs(3)).await;
    assert!(
        !read.starts_with(b"HTTP/"),
        "{}",
        String::from_utf8_lossy(&read)
    );

    // SIGHUP with the second pair in place: new connections get it...
    install_tls_pair(&dir, 2);
    server.signal("HUP");
    let mut renewed = None;
    for _ in 0..50 {
        if let Ok(stream) = tls_connect(&server.addr, &second.ca).await {
            renewed = Some(stream);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut renewed = renewed.expect("the second certificate within 5 s of SIGHUP");
    assert_eq!(peer_leaf(&renewed), leaf_der(&second.cert));
    assert!(tls_connect(&server.addr, &first.ca).await.is_err());
    // ... and the connection opened before goes on.
    let (status, _, _) = exchange(&mut kept, "GET", "/healthz", b"").await;
    assert_eq!(status, 200);
    let (status, _, metrics) = exchange(&mut renewed, "GET", "/metrics", b"").await;
    assert_eq!(status, 200);
    assert_eq!(
        sample(&metrics, "ec2_iid_tls_reloads_total{result=\"ok\"}"),
        1.0
    );

    // An invalid new pair is refused: the second stays.
    std::fs::write(dir.join("cert.pem"), "not a certificate").unwrap();
    server.signal("HUP");
    let mut failed = 0.0;
    for _ in 0..50 {
        let (_, _, metrics) = exchange(&mut renewed, "GET", "/metrics", b"").await;
        failed = sample(&metrics, "ec2_iid_tls_reloads_total{result=\"error\"}");
        if failed == 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(failed, 1.0);
    let again = tls_connect(&server.addr, &second.ca).await.unwrap();
    assert_eq!(peer_leaf(&again), leaf_der(&second.cert));
    assert!(
        server.log().contains("kept the old TLS certificate"),
        "{}",
        server.log()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn silent_and_idle_tls_connections_are_closed_by_their_timeouts() {
    let dir = scratch_dir("edges-tls-idle");
    let tls = install_tls_pair(&dir, 1);
    let flags = [
        &tls.each_ref().map(String::as_str)[..],
        &["--header-read-timeout", "1", "--idle-timeout", "2"],
    ]
    .concat();
    let server = Server::start(&dir, "serve", "http://127.0.0.1:1", &flags);
    let ca = tls_pair(1).ca;
    // No handshake: closed at the header-read timeout.
    let opened = Instant::now();
    let mut silent = TcpStream::connect(&server.addr).await.unwrap();
    until_closed(&mut silent, Duration::from_secs(3)).await;
    let took = opened.elapsed();
    assert!(
        (Duration::from_millis(900)..Duration::from_secs(2)).contains(&took),
        "{took:?}"
    );
    // Keep-alive: a request, then idle; a second request within the idle timeout is served
    // even past the header-read timeout, then the connection is closed once idle for 2 s.
    let mut kept = tls_connect(&server.addr, &ca).await.unwrap();
    let (status, _, _) = exchange(&mut kept, "GET", "/healthz", b"").await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, _, _) = exchange(&mut kept, "GET", "/healthz", b"").await;
    assert_eq!(status, 200);
    let idle = Instant::now();
    until_closed(&mut kept, Duration::from_secs(4)).await;
    let took = idle.elapsed();
    assert!(
        (Duration::from_millis(1900)..Duration::from_secs(3)).contains(&took),
        "{took:?}"
    );
}

fn set_mode(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// `serve ARGS` (listening on `listen`) to its exit.
fn serve_exit(listen: &str, extra: &[&str]) -> (Option<i32>, String) {
    let dir = scratch_dir("edges-refusals");
    let token = write_token(&dir, None);
    let output = serve_command_on(listen, &token, "http://127.0.0.1:1", extra)
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn refuses_bad_tls_setups_and_plain_http_off_loopback() {
    let dir = scratch_dir("edges-tls-files");
    let [_, cert, _, key] = install_tls_pair(&dir, 1);
    let loopback = "127.0.0.1:0";
    // The second pair's key, mode 600 (a checkout may leave it readable by others).
    let other_key = dir.join("other.key");
    std::fs::write(&other_key, std::fs::read(tls_pair(2).key).unwrap()).unwrap();
    set_mode(&other_key, 0o600);
    let other_key = other_key.display().to_string();
    let missing = dir.join("missing.key").display().to_string();
    let cases: [(&str, Vec<&str>, &[&str]); 8] = [
        (
            loopback,
            vec!["--tls-cert", &cert, "--tls-key", &other_key],
            &["--tls-cert and --tls-key"],
        ),
        (
            loopback,
            vec!["--tls-cert", &cert, "--tls-key", &missing],
            &["--tls-key", "missing.key"],
        ),
        (loopback, vec!["--max-inflight-joins", "0"], &["at least 1"]),
        (
            loopback,
            vec!["--tls-cert", &cert],
            &["--tls-cert needs --tls-key"],
        ),
        (
            loopback,
            vec!["--tls-key", &key],
            &["--tls-key needs --tls-cert"],
        ),
        (
            loopback,
            vec!["--tls-cert", &key, "--tls-key", &key],
            &["--tls-cert", "no CERTIFICATE"],
        ),
        (
            "0.0.0.0:0",
            vec![],
            &["not a loopback address", "--tls-cert", "--insecure-http"],
        ),
        (loopback, vec!["--max-connections", "0"], &["at least 1"]),
    ];
    for (listen, extra, messages) in cases {
        let (code, stderr) = serve_exit(listen, &extra);
        assert_eq!(code, Some(2), "{extra:?}: {stderr}");
        for message in messages {
            assert!(stderr.contains(message), "{extra:?}: {stderr}");
        }
    }
    // A key others can read.
    let open_key = dir.join("open.key");
    std::fs::copy(tls_pair(1).key, &open_key).unwrap();
    set_mode(&open_key, 0o644);
    let open_key = open_key.display().to_string();
    let (code, stderr) = serve_exit(loopback, &["--tls-cert", &cert, "--tls-key", &open_key]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("--tls-key") && stderr.contains("chmod 600"),
        "{stderr}"
    );
}

#[test]
fn insecure_http_off_loopback_starts_with_a_warning() {
    let dir = scratch_dir("edges-insecure");
    let token = write_token(&dir, None);
    let log = dir.join("serve.log");
    let mut child = serve_command_on(
        "0.0.0.0:0",
        &token,
        "http://127.0.0.1:1",
        &["--insecure-http"],
    )
    .stdout(Stdio::piped())
    .stderr(std::fs::File::create(&log).unwrap())
    .spawn()
    .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(line.starts_with("listening on 0.0.0.0:"), "{line}");
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(
        log.contains("WARN") && log.contains("--insecure-http"),
        "{log}"
    );
}
