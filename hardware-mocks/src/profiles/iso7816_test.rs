//! `iso7816-test`: a generic ISO 7816-4 card for testing the transport and session layers.
//!
//! Files (all transparent):
//!
//! | path | SFI | size | read | contents |
//! |---|---|---|---|---|
//! | 3F00 2F00 | | 23 | always | EF.DIR: one application template for the DF below |
//! | 3F00 5000 | | DF | | named [`AID`] (`F0` "EID-TEST") |
//! | 5000 0101 | 1 | 100 | always | byte i = (3i + 0x11) mod 256 |
//! | 5000 0102 | | 20 000 | always | byte i = (7i + 3) mod 251 |
//! | 5000 0103 | | 70 000 | always | byte i = (13i + 5) mod 256 XOR bits 8-15 of i XOR bits 16-23 of i |
//! | 5000 0104 | | 64 | PIN 81 | byte i = 0xA0 + i |
//! | 5000 0105 | | 1 024 | always | zeros; UPDATE BINARY allowed |
//! | 5000 0106 | | 91 | always | the card's P-256 public key, DER SubjectPublicKeyInfo |
//!
//! PIN 0x81 = "1234" (padded with `FF` to 8 bytes), 3 tries; its PUK "12345678", 10 tries. The
//! P-256 signing key (reference [`KEY_REF`]) is generated per card instance and needs PIN 0x81.
//! [`test_file`] gives the expected contents of every file but 0106.

use openssl::error::ErrorStack;

use crate::engine::{
    Access, CardBuilder, Df, Ef, Pin, Protocol, SigningKey, VirtualCard, atr_t0, atr_t1,
};

/// The application's DF name: `F0 45 49 44 2D 54 45 53 54`.
pub const AID: &[u8] = eid_card::detect::TEST_CARD_AID;
/// The application DF.
pub const APP_FID: u16 = 0x5000;
/// EF.DIR, in the MF.
pub const EF_DIR: u16 = 0x2F00;
/// 100 bytes, SFI 1.
pub const EF_SMALL: u16 = 0x0101;
pub const EF_SMALL_SFI: u8 = 1;
/// 20 000 bytes.
pub const EF_MEDIUM: u16 = 0x0102;
/// 70 000 bytes: offsets past 32 767 need READ BINARY B1.
pub const EF_LARGE: u16 = 0x0103;
/// 64 bytes, readable after VERIFY of PIN 0x81.
pub const EF_PROTECTED: u16 = 0x0104;
/// 1 024 bytes, writable.
pub const EF_WRITABLE: u16 = 0x0105;
/// The signing key's SubjectPublicKeyInfo.
pub const EF_PUBLIC_KEY: u16 = 0x0106;

pub const PIN_REF: u8 = 0x81;
pub const PIN: &[u8] = b"1234";
pub const PIN_TRIES: u8 = 3;
pub const PUK: &[u8] = b"12345678";
pub const PUK_TRIES: u8 = 10;
/// Reference of the signing key (tag 84 of MSE SET).
pub const KEY_REF: u8 = 0x01;

/// Issuer data in the historical bytes, so the ATRs are recognisable.
const ISSUER_DATA: &[u8] = b"EID-TEST";

/// The three flavours of the card.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Variant {
    /// T=1, extended length and command chaining (`iso7816-test`).
    Full,
    /// T=1, chaining only: extended APDUs are answered 6700 (`iso7816-test-short`).
    ShortOnly,
    /// T=0, short APDUs, chaining (`iso7816-test-t0`).
    T0,
}

/// The historical bytes: category 80, card capabilities (selection by full and partial DF
/// name, path, FID and SFI; data unit of one byte; chaining, and extended length for
/// [`Variant::Full`]), then the card issuer's data "EID-TEST".
pub fn historical_bytes(variant: Variant) -> Vec<u8> {
    let third = match variant {
        Variant::Full => 0xC0,
        Variant::ShortOnly | Variant::T0 => 0x80,
    };
    let mut out = vec![
        0x80,
        0x73,
        0xF4,
        0x21,
        third,
        0x50 | ISSUER_DATA.len() as u8,
    ];
    out.extend_from_slice(ISSUER_DATA);
    out
}

/// The ATR of a variant.
pub fn atr(variant: Variant) -> Vec<u8> {
    match variant {
        Variant::Full | Variant::ShortOnly => atr_t1(&historical_bytes(variant)),
        Variant::T0 => atr_t0(&historical_bytes(variant)),
    }
}

/// The expected contents of a file (by FID), for every file except the per-instance public key.
pub fn test_file(fid: u16) -> Option<Vec<u8>> {
    let pattern = |len: usize, f: fn(usize) -> u8| (0..len).map(f).collect::<Vec<u8>>();
    Some(match fid {
        EF_DIR => {
            let mut app = vec![0x4F, AID.len() as u8];
            app.extend_from_slice(AID);
            app.extend([0x50, ISSUER_DATA.len() as u8]);
            app.extend_from_slice(ISSUER_DATA);
            let mut dir = vec![0x61, app.len() as u8];
            dir.extend(app);
            dir
        }
        EF_SMALL => pattern(100, |i| (i.wrapping_mul(3).wrapping_add(0x11) % 256) as u8),
        EF_MEDIUM => pattern(20_000, |i| ((i * 7 + 3) % 251) as u8),
        EF_LARGE => pattern(70_000, |i| {
            ((i * 13 + 5) % 256) as u8 ^ (i >> 8) as u8 ^ (i >> 16) as u8
        }),
        EF_PROTECTED => pattern(64, |i| 0xA0 + i as u8),
        EF_WRITABLE => vec![0; 1024],
        _ => return None,
    })
}

/// A fresh card (with a freshly generated signing key).
pub fn card(variant: Variant) -> Result<VirtualCard, ErrorStack> {
    let key = SigningKey::generate_p256(KEY_REF, Access::Pin(PIN_REF))?;
    let file = |fid: u16| Ef::new(fid, test_file(fid).unwrap_or_default());
    let app = Df::new(APP_FID)
        .name(AID)
        .ef(file(EF_SMALL).sfi(EF_SMALL_SFI))
        .ef(file(EF_MEDIUM))
        .ef(file(EF_LARGE))
        .ef(file(EF_PROTECTED).read(Access::Pin(PIN_REF)))
        .ef(file(EF_WRITABLE).update(Access::Always))
        .ef(Ef::new(EF_PUBLIC_KEY, key.public_key_der()));
    let mf = Df::mf().ef(file(EF_DIR)).df(app);
    let builder = CardBuilder::new(atr(variant), mf)
        .pin(Pin::new(PIN_REF, PIN, PIN_TRIES).with_puk(PUK, PUK_TRIES))
        .key(key);
    let builder = match variant {
        Variant::Full => builder,
        Variant::ShortOnly => builder.extended_length(false),
        Variant::T0 => builder.extended_length(false).protocol(Protocol::T0),
    };
    Ok(builder.build())
}
