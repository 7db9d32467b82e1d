//! The case lifecycle: referral received → triage → open → under review →
//! closed (a former subject, reviewed until a date), and back to triage when
//! a former subject re-engages. One statement of the allowed moves: the
//! gateway refuses a move the case's current status does not allow before
//! accepting it, and the cases service, which applies moves in EVENTS order,
//! refuses one that became impossible in between.

use liaison_proto::v1::CaseStatus;

/// Why a move is not allowed, worded for the sender.
pub fn check(from: Option<CaseStatus>, to: CaseStatus) -> Result<(), String> {
    use CaseStatus as S;
    let allowed = match (from, to) {
        (_, S::Unspecified) => return Err("a status is required".to_owned()),
        (None, S::Referred) => true,
        (None, _) => {
            return Err(format!(
                "the case does not exist: open it first with status {}",
                name(S::Referred)
            ));
        }
        (Some(_), S::Referred) => {
            return Err("the case already exists".to_owned());
        }
        // Recorded by hand (no lifecycle yet): any move but opening.
        (Some(S::Unspecified), _) => true,
        (Some(S::Referred), S::Triage | S::Closed) => true,
        (Some(S::Triage), S::Open | S::Closed) => true,
        (Some(S::Open), S::UnderReview | S::Closed) => true,
        (Some(S::UnderReview), S::Open | S::Closed) => true,
        (Some(S::Closed), S::Triage) => true,
        _ => false,
    };
    if allowed {
        Ok(())
    } else {
        Err(format!(
            "a case cannot move from {} to {}",
            from.map_or("nothing", name),
            name(to)
        ))
    }
}

/// The status's name without its prefix: `TRIAGE`, `UNDER_REVIEW`, ...
pub fn name(status: CaseStatus) -> &'static str {
    let full = status.as_str_name();
    full.strip_prefix("CASE_STATUS_").unwrap_or(full)
}

/// Whether a case in this status is live (on a priority list).
pub fn is_live(status: CaseStatus) -> bool {
    matches!(
        status,
        CaseStatus::Referred | CaseStatus::Triage | CaseStatus::Open | CaseStatus::UnderReview
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use CaseStatus as S;

    #[test]
    fn the_lifecycle_allows_only_its_moves() {
        assert!(check(None, S::Referred).is_ok());
        assert!(check(None, S::Open).is_err_and(|e| e.contains("does not exist")));
        assert!(check(Some(S::Open), S::Referred).is_err_and(|e| e.contains("already exists")));
        for (from, to) in [
            (S::Referred, S::Triage),
            (S::Triage, S::Open),
            (S::Open, S::UnderReview),
            (S::UnderReview, S::Open),
            (S::UnderReview, S::Closed),
            (S::Closed, S::Triage),
            (S::Unspecified, S::Open),
        ] {
            assert!(check(Some(from), to).is_ok(), "{from:?} -> {to:?}");
        }
        for (from, to) in [
            (S::Closed, S::Open),
            (S::Referred, S::Open),
            (S::Closed, S::Closed),
            (S::Open, S::Triage),
        ] {
            assert!(
                check(Some(from), to).is_err_and(|e| e.contains("cannot move")),
                "{from:?} -> {to:?}"
            );
        }
        assert!(check(Some(S::Open), S::Unspecified).is_err());
        assert_eq!(name(S::UnderReview), "UNDER_REVIEW");
    }
}
