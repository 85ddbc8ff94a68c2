//! Photo conversion (`eid_card::image::to_png`) on arbitrary bytes: JPEG and JPEG 2000 decoders
//! fed whatever a card or a data group holds. Invariants: nothing panics, and the size limit is
//! applied before decoding (libFuzzer's -rss_limit_mb catches a decoder that allocates anyway).
#![no_main]

use eid_card::image::{image_format, to_png};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let format = image_format(input);
    if let Ok(png) = to_png(input) {
        assert!(format.is_some(), "decoded an image of no known format");
        assert_eq!(image_format(&png), Some(eid_card::image::PhotoFormat::Png));
    }
});
