//! The harness's own switches.

use liaison_tests::log_filter;

#[test]
fn test_log_values_name_a_filter_or_none() {
    assert_eq!(log_filter(None), None);
    assert_eq!(log_filter(Some("")), None);
    assert_eq!(log_filter(Some("0")), None);
    assert_eq!(log_filter(Some("1")).as_deref(), Some("info"));
    assert_eq!(log_filter(Some("TRUE")).as_deref(), Some("info"));
    assert_eq!(
        log_filter(Some(" liaison_gateway=debug,warn ")).as_deref(),
        Some("liaison_gateway=debug,warn")
    );
}
