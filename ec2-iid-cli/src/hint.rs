//! Hints only the command line can give: mistakes in what was passed, which the core sees only
//! as undecodable bytes or refused algorithms.

use ec2_iid::Format;
use ec2_iid::dangerous::{detect_cms_format, parse_signed_data};

use crate::setup::Setup;

/// What the operator most likely passed by mistake, if the input shows it.
pub(crate) fn cli_hint(setup: &Setup) -> Option<String> {
    let text = setup.blob.trim_ascii();
    if text.len() >= 2 && text.starts_with(b"\"") && text.ends_with(b"\"") {
        return Some("the input is a JSON string: strip the surrounding quotes".into());
    }
    if text.starts_with(b"{") {
        return Some(
            "this is the /document JSON; pass the /rsa2048 or /signature text, or use --document"
                .into(),
        );
    }
    wrong_format(setup)
}

/// `--format` names another CMS format than the blob is in (or `--document` came with a CMS
/// blob).
fn wrong_format(setup: &Setup) -> Option<String> {
    let signed = parse_signed_data(&setup.blob).ok()?;
    let detected = detect_cms_format(&signed, &setup.trust);
    let given = match (&setup.document, setup.options.format) {
        (Some(_), _) => Format::Signature,
        (None, Some(format)) => format,
        (None, None) => return None,
    };
    if given == detected {
        return None;
    }
    Some(match detected {
        Format::Pkcs7 => {
            "the blob is /pkcs7: use --format pkcs7 --allow-legacy-dsa, or fetch /rsa2048".into()
        }
        _ if given == Format::Signature => {
            format!("the blob is a CMS /{detected} blob, not /signature text: leave out --document")
        }
        _ => format!("the blob is /{detected}: use --format {detected}, or leave --format out"),
    })
}
