//! Interindustry commands, one constructor each (ISO/IEC 7816-4:2005 §7 unless said otherwise).
//!
//! Constructors return a [`Command`] with Ne set to what the command can answer; the length form
//! is chosen by the session layer. Card-specific commands (MSE for a given card, PSO, PACE's
//! GENERAL AUTHENTICATE...) live with the protocol or card application that uses them.

use zeroize::Zeroizing;

use crate::apdu::{Command, SHORT_MAX_NE};

/// What SELECT selects, by P1 (ISO/IEC 7816-4:2005 §7.1.1, table 39).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Select<'a> {
    /// P1 = 00 with FID 3F00: the master file.
    MasterFile,
    /// P1 = 00: MF, DF or EF by file identifier.
    Fid(u16),
    /// P1 = 01: a DF child of the current DF.
    ChildDf(u16),
    /// P1 = 02: an EF child of the current DF.
    ChildEf(u16),
    /// P1 = 03: the parent DF of the current DF.
    Parent,
    /// P1 = 04: a DF by name (an application identifier).
    DfName(&'a [u8]),
    /// P1 = 08: a path from the MF, without the MF's own identifier.
    PathFromMf(&'a [u16]),
    /// P1 = 09: a path from the current DF.
    PathFromCurrent(&'a [u16]),
}

/// What SELECT returns, by P2 (ISO/IEC 7816-4:2005 §7.1.1, table 40).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FileReturn {
    /// P2 = 00: the FCI template (tag 6F).
    Fci,
    /// P2 = 04: the FCP template (tag 62).
    Fcp,
    /// P2 = 08: the FMD template (tag 64).
    Fmd,
    /// P2 = 0C: no response data.
    None,
}

/// ISO/IEC 7816-4:2005 §7.1.1 SELECT
pub fn select(target: Select<'_>, ret: FileReturn) -> Command {
    let (p1, data): (u8, Vec<u8>) = match target {
        Select::MasterFile => (0x00, vec![0x3F, 0x00]),
        Select::Fid(fid) => (0x00, fid.to_be_bytes().to_vec()),
        Select::ChildDf(fid) => (0x01, fid.to_be_bytes().to_vec()),
        Select::ChildEf(fid) => (0x02, fid.to_be_bytes().to_vec()),
        Select::Parent => (0x03, Vec::new()),
        Select::DfName(name) => (0x04, name.to_vec()),
        Select::PathFromMf(path) => (0x08, path.iter().flat_map(|f| f.to_be_bytes()).collect()),
        Select::PathFromCurrent(path) => {
            (0x09, path.iter().flat_map(|f| f.to_be_bytes()).collect())
        }
    };
    let (p2, ne) = match ret {
        FileReturn::Fci => (0x00, SHORT_MAX_NE),
        FileReturn::Fcp => (0x04, SHORT_MAX_NE),
        FileReturn::Fmd => (0x08, SHORT_MAX_NE),
        FileReturn::None => (0x0C, 0),
    };
    Command::new(0x00, 0xA4, p1, p2).with_data(data).with_ne(ne)
}

/// ISO/IEC 7816-4:2005 §7.2.3 READ BINARY (INS B0), offset up to 32 767 in the current EF.
///
/// Returns `None` when the offset does not fit 15 bits; use [`read_binary_odd`] then.
pub fn read_binary(offset: u16, ne: usize) -> Option<Command> {
    (offset <= 0x7FFF).then(|| {
        let [p1, p2] = offset.to_be_bytes();
        Command::new(0x00, 0xB0, p1, p2).with_ne(ne)
    })
}

/// ISO/IEC 7816-4:2005 §7.2.3 READ BINARY (INS B0) with a short EF identifier in P1, which also
/// selects that EF. Returns `None` for an SFI outside 1..=30.
pub fn read_binary_sfi(sfi: u8, offset: u8, ne: usize) -> Option<Command> {
    (1..=30)
        .contains(&sfi)
        .then(|| Command::new(0x00, 0xB0, 0x80 | sfi, offset).with_ne(ne))
}

/// ISO/IEC 7816-4:2005 §7.2.3 READ BINARY (odd INS B1): the offset in data object 54, for
/// files larger than 32 767 bytes. The response data is wrapped in a 53 data object.
pub fn read_binary_odd(offset: u32, ne: usize) -> Command {
    let offset_bytes = offset.to_be_bytes();
    let skip = offset_bytes.iter().take_while(|&&b| b == 0).count().min(3);
    let value = offset_bytes.get(skip..).unwrap_or(&[0]);
    let mut data = vec![0x54, value.len() as u8];
    data.extend_from_slice(value);
    Command::new(0x00, 0xB1, 0x00, 0x00)
        .with_data(data)
        .with_ne(ne)
}

/// ISO/IEC 7816-4:2005 §7.2.5 UPDATE BINARY (INS D6) in the current EF.
///
/// Returns `None` when the offset does not fit 15 bits.
pub fn update_binary(offset: u16, data: &[u8]) -> Option<Command> {
    (offset <= 0x7FFF).then(|| {
        let [p1, p2] = offset.to_be_bytes();
        Command::new(0x00, 0xD6, p1, p2).with_data(data.to_vec())
    })
}

/// ISO/IEC 7816-4:2005 §7.4.2 GET DATA (INS CA) for a data object with a tag of one or two bytes.
pub fn get_data(tag: u16, ne: usize) -> Command {
    let [p1, p2] = tag.to_be_bytes();
    Command::new(0x00, 0xCA, p1, p2).with_ne(ne)
}

/// ISO/IEC 7816-4:2005 §7.5.3 GET CHALLENGE (INS 84): `len` random bytes from the card.
pub fn get_challenge(len: usize) -> Command {
    Command::new(0x00, 0x84, 0x00, 0x00).with_ne(len)
}

/// ISO/IEC 7816-4:2005 §7.5.2 INTERNAL AUTHENTICATE (INS 88): the card proves itself over
/// `challenge` with the key chosen by P1 (algorithm) and P2 (key reference).
pub fn internal_authenticate(algorithm: u8, key_ref: u8, challenge: &[u8], ne: usize) -> Command {
    Command::new(0x00, 0x88, algorithm, key_ref)
        .with_data(challenge.to_vec())
        .with_ne(ne)
}

/// ISO/IEC 7816-4:2005 §7.5.4 EXTERNAL AUTHENTICATE (INS 82): the terminal proves itself.
pub fn external_authenticate(algorithm: u8, key_ref: u8, cryptogram: &[u8], ne: usize) -> Command {
    Command::new(0x00, 0x82, algorithm, key_ref)
        .with_data(cryptogram.to_vec())
        .with_ne(ne)
}

/// ISO/IEC 7816-4:2005 §7.5.6 VERIFY (INS 20) with reference data (a formatted PIN).
///
/// The PIN block is moved in, never copied, and the command is marked sensitive.
pub fn verify(pin_ref: u8, pin_block: Zeroizing<Vec<u8>>) -> Command {
    Command::new(0x00, 0x20, 0x00, pin_ref).with_secret_data(pin_block)
}

/// ISO/IEC 7816-4:2005 §7.5.6 VERIFY (INS 20) without data: asks for the verification status
/// (9000 verified, 63Cx tries left, 6983 blocked) without spending a try.
pub fn verify_status(pin_ref: u8) -> Command {
    Command::new(0x00, 0x20, 0x00, pin_ref)
}

/// ISO/IEC 7816-4:2005 §7.5.7 CHANGE REFERENCE DATA (INS 24), P1 = 00: old || new.
pub fn change_reference_data(pin_ref: u8, old_and_new: Zeroizing<Vec<u8>>) -> Command {
    Command::new(0x00, 0x24, 0x00, pin_ref).with_secret_data(old_and_new)
}

/// ISO/IEC 7816-4:2005 §7.5.10 RESET RETRY COUNTER (INS 2C), P1 = 00: PUK || new PIN.
pub fn reset_retry_counter(pin_ref: u8, puk_and_new: Zeroizing<Vec<u8>>) -> Command {
    Command::new(0x00, 0x2C, 0x00, pin_ref).with_secret_data(puk_and_new)
}

/// ISO/IEC 7816-4:2005 §7.5.11 MANAGE SECURITY ENVIRONMENT (INS 22) with control reference
/// templates in `data` (P1: set/restore and for what; P2: the template's tag).
pub fn manage_security_environment(p1: u8, p2: u8, data: &[u8]) -> Command {
    Command::new(0x00, 0x22, p1, p2).with_data(data.to_vec())
}

/// ISO/IEC 7816-4:2005 §7.6.1 GET RESPONSE (INS C0): up to `ne` bytes the card holds back.
pub fn get_response(ne: usize) -> Command {
    Command::new(0x00, 0xC0, 0x00, 0x00).with_ne(ne)
}

/// ISO/IEC 7816-8:2004 §5.2 PERFORM SECURITY OPERATION: COMPUTE DIGITAL SIGNATURE (INS 2A,
/// P1-P2 9E 9A) over data prepared by the current security environment.
pub fn pso_compute_digital_signature(data: &[u8], ne: usize) -> Command {
    Command::new(0x00, 0x2A, 0x9E, 0x9A)
        .with_data(data.to_vec())
        .with_ne(ne)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apdu::LengthForm;

    fn short(cmd: Command) -> String {
        hex::encode_upper(&*cmd.encode(LengthForm::Short).unwrap())
    }

    #[test]
    fn select_variants_match_the_bytes_cards_expect() {
        assert_eq!(
            short(select(Select::MasterFile, FileReturn::None)),
            "00A4000C023F00"
        );
        assert_eq!(
            short(select(Select::ChildEf(0x011E), FileReturn::None)),
            "00A4020C02011E"
        );
        assert_eq!(
            short(select(Select::Fid(0x5F00), FileReturn::Fci)),
            "00A40000025F0000"
        );
        let aid = [0x60, 0x46, 0x32, 0xFF, 0x00, 0x00, 0x02];
        assert_eq!(
            short(select(Select::DfName(&aid), FileReturn::None)),
            "00A4040C07604632FF000002"
        );
        assert_eq!(
            short(select(
                Select::PathFromMf(&[0x5F00, 0xEF02]),
                FileReturn::Fcp
            )),
            "00A40804045F00EF0200"
        );
        assert_eq!(short(select(Select::Parent, FileReturn::None)), "00A4030C");
    }

    #[test]
    fn read_binary_variants() {
        assert_eq!(short(read_binary(0x0004, 0x12).unwrap()), "00B0000412");
        assert!(read_binary(0x8000, 1).is_none());
        assert_eq!(short(read_binary_sfi(0x1E, 0, 4).unwrap()), "00B09E0004");
        assert!(read_binary_sfi(31, 0, 4).is_none());
        assert_eq!(
            short(read_binary_odd(0x0001_0000, 256)),
            "00B1000005540301000000"
        );
        assert_eq!(short(read_binary_odd(0, 16)), "00B100000354010010");
    }

    #[test]
    fn pin_commands_are_sensitive() {
        let block = Zeroizing::new(b"1234\xFF\xFF\xFF\xFF".to_vec());
        let cmd = verify(0x81, block);
        assert!(cmd.is_sensitive());
        assert_eq!(short(cmd), "002000810831323334FFFFFFFF");
        assert_eq!(short(verify_status(0x81)), "00200081");
    }

    #[test]
    fn security_commands() {
        // CC1's MSE SET DST for the authentication key with SHA-256 + PKCS#1 v1.5 (cards.md A6).
        let mse = manage_security_environment(0x41, 0xB6, &[0x80, 0x01, 0x42, 0x84, 0x01, 0x02]);
        assert_eq!(short(mse), "002241B606800142840102");
        assert_eq!(
            short(pso_compute_digital_signature(&[0xAB; 2], 256)),
            "002A9E9A02ABAB00"
        );
        // BAC EXTERNAL AUTHENTICATE (ICAO 9303-11 Appendix D): 40 bytes, Le 28.
        let ext = short(external_authenticate(0, 0, &[0x11; 40], 40));
        assert_eq!(ext, format!("0082000028{}28", "11".repeat(40)));
        assert_eq!(
            short(internal_authenticate(0, 0, &[1, 2, 3, 4, 5, 6, 7, 8], 256)),
            "0088000008010203040506070800"
        );
        let change = change_reference_data(
            0x81,
            Zeroizing::new(b"1234\xFF\xFF\xFF\xFF5678\xFF\xFF\xFF\xFF".to_vec()),
        );
        assert!(change.is_sensitive());
        assert_eq!(short(change), "002400811031323334FFFFFFFF35363738FFFFFFFF");
        let unblock = reset_retry_counter(0x81, Zeroizing::new(b"12345678".to_vec()));
        assert!(unblock.is_sensitive());
        assert_eq!(short(unblock), "002C0081083132333435363738");
    }

    #[test]
    fn other_commands() {
        assert_eq!(short(get_response(0x80)), "00C0000080");
        assert_eq!(short(get_challenge(8)), "0084000008");
        assert_eq!(short(get_data(0x9F7F, 0x2D)), "00CA9F7F2D");
    }
}
