//! The example custom transport (`examples/multipart.rs`), built outside the
//! built-in crates, passes the whole suite.

#[path = "../examples/multipart.rs"]
mod multipart;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_multipart_example_passes_the_suite() {
    let report = multipart::run().await;
    println!("{}", report.table());
    assert_eq!(report.failures(), 0, "{}", report.table());
    assert!(report.passes() >= 18, "{}", report.table());
}
