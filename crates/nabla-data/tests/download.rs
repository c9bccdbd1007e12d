//! The downloader against a tiny HTTP/1.1 server on 127.0.0.1 that this test runs: success,
//! a wrong checksum, a connection cut short, a 404, and fetching a CIFAR-style archive.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use nabla_data::catalog::{self, DatasetInfo, Origin, RemoteFile};
use nabla_data::download::{Progress, download, extract_tar_gz, part_path, sha256_file};
use nabla_data::{Dataset, Split};
use sha2::{Digest, Sha256};

#[derive(Clone)]
enum Reply {
    Body(Vec<u8>),
    /// Announce `announced` bytes, send `body`, close.
    Cut {
        announced: usize,
        body: Vec<u8>,
    },
}

/// Serves `routes` to at most `connections` clients, then its thread ends.
fn serve(routes: HashMap<&'static str, Reply>, connections: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let routes = Arc::new(routes);
    std::thread::spawn(move || {
        for stream in listener.incoming().take(connections) {
            let Ok(mut stream) = stream else { continue };
            stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            // Skip the headers.
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                line.clear();
            }
            let path = request_line.split_whitespace().nth(1).unwrap_or("/");
            let _ = match routes.get(path) {
                Some(Reply::Body(b)) => stream
                    .write_all(
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            b.len()
                        )
                        .as_bytes(),
                    )
                    .and_then(|()| stream.write_all(b)),
                Some(Reply::Cut { announced, body }) => stream
                    .write_all(
                        format!("HTTP/1.1 200 OK\r\nContent-Length: {announced}\r\nConnection: close\r\n\r\n")
                            .as_bytes(),
                    )
                    .and_then(|()| stream.write_all(body)),
                None => stream
                    .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found"),
            };
            let _ = stream.flush();
            // Dropping the stream closes the connection.
        }
    });
    format!("http://{addr}")
}

fn sha(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn fixture() -> Vec<u8> {
    (0..200_000u32).map(|i| (i * 7 % 253) as u8).collect()
}

fn nothing_left(dest: &Path) {
    assert!(!dest.exists(), "{} was kept", dest.display());
    assert!(!part_path(dest).exists(), "{} was kept", part_path(dest).display());
}

#[test]
fn a_good_download_is_verified_and_renamed_into_place() {
    let data = fixture();
    let base = serve(HashMap::from([("/f.bin", Reply::Body(data.clone()))]), 2);
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("sub/dir/f.bin");
    let n = download(&format!("{base}/f.bin"), &dest, Some(&sha(&data)), Progress::Plain).unwrap();
    assert_eq!(n, data.len() as u64);
    assert_eq!(std::fs::read(&dest).unwrap(), data);
    assert!(!part_path(&dest).exists());
    assert_eq!(sha256_file(&dest).unwrap(), sha(&data));
    // Without a checksum the file is kept as it came.
    let dest2 = tmp.path().join("g.bin");
    download(&format!("{base}/f.bin"), &dest2, None, Progress::Hidden).unwrap();
    assert_eq!(std::fs::read(&dest2).unwrap(), data);
}

#[test]
fn a_wrong_checksum_keeps_nothing() {
    let base = serve(HashMap::from([("/f.bin", Reply::Body(fixture()))]), 1);
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("f.bin");
    let wrong = sha(b"something else");
    let e = download(&format!("{base}/f.bin"), &dest, Some(&wrong), Progress::Hidden)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&format!("SHA-256 mismatch: expected {wrong}, got {}", sha(&fixture()))),
        "{e}"
    );
    assert!(e.contains("deleted"), "{e}");
    nothing_left(&dest);
}

#[test]
fn a_cut_connection_is_an_error_and_leaves_no_partial_file() {
    let body = fixture()[..50_000].to_vec();
    let base = serve(
        HashMap::from([(
            "/f.bin",
            Reply::Cut {
                announced: 200_000,
                body,
            },
        )]),
        1,
    );
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("f.bin");
    let e = download(&format!("{base}/f.bin"), &dest, None, Progress::Hidden)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with(&format!("{base}/f.bin: connection")), "{e}");
    assert!(e.contains("of 200000 bytes"), "{e}");
    nothing_left(&dest);
}

#[test]
fn a_404_is_an_error_and_leaves_nothing() {
    let base = serve(HashMap::new(), 1);
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("missing.bin");
    let e = download(&format!("{base}/missing.bin"), &dest, None, Progress::Hidden)
        .unwrap_err()
        .to_string();
    assert_eq!(e, format!("{base}/missing.bin: HTTP 404 Not Found"));
    nothing_left(&dest);
}

#[test]
fn an_unreachable_server_is_an_error() {
    // Bind then drop a listener: nothing listens on that port any more.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("x");
    let e = download(&format!("http://127.0.0.1:{port}/x"), &dest, None, Progress::Hidden).unwrap_err();
    assert!(e.to_string().contains("request failed"), "{e}");
    nothing_left(&dest);
}

/// A CIFAR-10-shaped `.tar.gz` with one record per batch.
fn cifar_archive() -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, format!("cifar-10-batches-bin/{name}"), data)
            .unwrap();
    };
    for (i, name) in [
        "data_batch_1",
        "data_batch_2",
        "data_batch_3",
        "data_batch_4",
        "data_batch_5",
        "test_batch",
    ]
    .iter()
    .enumerate()
    {
        let mut rec = vec![i as u8];
        rec.extend(std::iter::repeat_n(i as u8, 3072));
        add(&format!("{name}.bin"), &rec);
    }
    add("batches.meta.txt", b"a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n");
    tar.into_inner().unwrap().finish().unwrap()
}

#[test]
fn fetch_downloads_unpacks_and_the_catalog_finds_it() {
    let archive = cifar_archive();
    let base = serve(
        HashMap::from([("/cifar-10-binary.tar.gz", Reply::Body(archive.clone()))]),
        1,
    );
    let url: &'static str = Box::leak(format!("{base}/cifar-10-binary.tar.gz").into_boxed_str());
    let sha: &'static str = Box::leak(sha(&archive).into_boxed_str());
    let files: &'static [RemoteFile] = Box::leak(Box::new([RemoteFile {
        file: "cifar-10-binary.tar.gz",
        url,
        sha256: Some(sha),
    }]));
    let info = DatasetInfo {
        files,
        ..*catalog::info("cifar10").unwrap()
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = catalog::fetch(&info, tmp.path(), Progress::Hidden).unwrap();
    assert_eq!(dir, tmp.path().join("cifar10"));
    assert!(dir.join("cifar-10-batches-bin/test_batch.bin").is_file());
    // The archive and the unpacking folder are gone.
    assert!(!tmp.path().join("cifar-10-binary.tar.gz").exists());
    assert!(!tmp.path().join(".cifar10.part").exists());
    // Fetching again finds it complete and does not download (the server would refuse).
    assert_eq!(catalog::fetch(&info, tmp.path(), Progress::Hidden).unwrap(), dir);

    let roots = vec![(Origin::Env, tmp.path().to_path_buf())];
    let loc = catalog::locate_in(&info, &roots).unwrap();
    assert_eq!(loc.origin, Origin::Env);
    assert_eq!(loc.path.as_deref(), Some(dir.as_path()));
    let train = catalog::load_from(&info, loc.path.as_deref(), Split::Train, false).unwrap();
    assert_eq!(train.labels, vec![0, 1, 2, 3, 4]);
    assert_eq!(train.classes[2], "c");
    let test = catalog::load_from(&info, Some(&dir), Split::Test, false).unwrap();
    assert_eq!(test.len(), 1);
    assert_eq!(test.get(0).1, 5);
}

#[test]
fn extracting_a_damaged_archive_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = cifar_archive();
    let path = tmp.path().join("a.tar.gz");
    std::fs::write(&path, &archive[..archive.len() / 2]).unwrap();
    let e = extract_tar_gz(&path, &tmp.path().join("out")).unwrap_err().to_string();
    assert!(e.starts_with(&format!("{}: cannot extract", path.display())), "{e}");
}

#[test]
fn lookup_order_and_layouts() {
    let cifar = catalog::info("CIFAR-10").unwrap();
    assert_eq!(cifar.name, "cifar10");
    assert!(catalog::info("imagenet").is_none());
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    // MNIST files straight in the --data-dir folder, and under <root>/mnist in another root.
    for dir in [a.path().to_path_buf(), b.path().join("mnist")] {
        std::fs::create_dir_all(&dir).unwrap();
        for f in [
            "train-images-idx3-ubyte.gz",
            "train-labels-idx1-ubyte",
            "t10k-images-idx3-ubyte",
            "t10k-labels-idx1-ubyte.gz",
        ] {
            std::fs::write(dir.join(f), b"").unwrap();
        }
    }
    let mnist = catalog::info("mnist").unwrap();
    let roots = vec![
        (Origin::DataDir, a.path().to_path_buf()),
        (Origin::Cache, b.path().to_path_buf()),
    ];
    assert_eq!(catalog::locate_in(mnist, &roots).unwrap().origin, Origin::DataDir);
    // A root other than --data-dir only counts with the dataset's own folder.
    let roots = vec![
        (Origin::Env, a.path().to_path_buf()),
        (Origin::Cache, b.path().to_path_buf()),
    ];
    let loc = catalog::locate_in(mnist, &roots).unwrap();
    assert_eq!((loc.origin, loc.path), (Origin::Cache, Some(b.path().join("mnist"))));
    // Nothing anywhere: MNIST is not found, Fashion-MNIST falls back to the bundled copy.
    let empty = vec![(Origin::Env, tempfile::tempdir().unwrap().path().to_path_buf())];
    assert!(catalog::locate_in(mnist, &empty).is_none());
    let fashion = catalog::info("fashion").unwrap();
    assert_eq!(catalog::locate_in(fashion, &empty).unwrap().origin, Origin::Bundled);
    // An unknown name is an error listing the known ones.
    let e = catalog::load("svhn", None, Split::Test).unwrap_err().to_string();
    assert!(e.contains("available: mnist, fashion-mnist, cifar10, cifar100"), "{e}");
}
