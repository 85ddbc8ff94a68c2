//! PKCS#15 (ISO/IEC 7816-15) structures of the Citizen Card: EF.DIR, ODF, TokenInfo, PrKDF,
//! CDF and AODF, DER-encoded as PKCS #15 v1.1 §6 defines them.
//!
//! OpenSC's `pteid` emulator (cards.md §A8) reads TokenInfo and the ODF under 3F00 4F00, then
//! parses the PrKDF, CDF and AODF the ODF points at, and reads PIN tries with VERIFY without data.

use crate::der;

/// PKCS#15 application identifier (PKCS #15 v1.1 §5.4.1).
pub const PKCS15_AID: &[u8] = &[
    0xA0, 0x00, 0x00, 0x00, 0x63, 0x50, 0x4B, 0x43, 0x53, 0x2D, 0x31, 0x35,
];

/// A private key entry of a PrKDF.
#[derive(Clone, Debug)]
pub struct KeyEntry {
    pub label: &'static str,
    pub id: u8,
    /// The PIN (auth id) that protects it.
    pub auth_id: u8,
    /// Key reference of MSE SET (tag 84).
    pub key_reference: u8,
    /// The DF holding the key (what OpenSC selects before MSE SET).
    pub path: Vec<u8>,
    /// RSA modulus length in bits, or EC field size in bits.
    pub bits: u32,
    pub ec: bool,
    /// Usage: sign (authentication) or nonRepudiation (qualified signature).
    pub non_repudiation: bool,
}

/// A certificate entry of a CDF.
#[derive(Clone, Debug)]
pub struct CertEntry {
    pub label: &'static str,
    pub id: u8,
    pub authority: bool,
    pub path: Vec<u8>,
}

/// A PIN entry of an AODF.
#[derive(Clone, Debug)]
pub struct PinEntry {
    pub label: &'static str,
    pub auth_id: u8,
    pub reference: u8,
}

fn path(bytes: &[u8]) -> Vec<u8> {
    der::sequence(&[der::octet_string(bytes)])
}

/// BIT STRING from the bit numbers that are set (bit 0 is the first, most significant).
fn bit_string(bits: &[u32]) -> Vec<u8> {
    let Some(&max) = bits.iter().max() else {
        return der::bit_string(0, &[]);
    };
    let bytes = (max / 8 + 1) as usize;
    let mut value = vec![0u8; bytes];
    for &bit in bits {
        if let Some(byte) = value.get_mut((bit / 8) as usize) {
            *byte |= 0x80 >> (bit % 8);
        }
    }
    der::bit_string((7 - max % 8) as u8, &value)
}

fn common_object(label: &str, private: bool, auth_id: Option<u8>) -> Vec<u8> {
    let mut items = vec![der::utf8_string(label)];
    // CommonObjectFlags: private(0), modifiable(1).
    items.push(if private {
        bit_string(&[0])
    } else {
        bit_string(&[])
    });
    if let Some(id) = auth_id {
        items.push(der::octet_string(&[id]));
    }
    der::sequence(&items)
}

/// EF.DIR (ISO/IEC 7816-4 §8.2.1.1): one application template per entry (AID, label, path).
pub fn ef_dir(apps: &[(&[u8], &str, &[u8])]) -> Vec<u8> {
    apps.iter()
        .flat_map(|(aid, label, app_path)| {
            let mut content = der::tlv(&[0x4F], aid);
            content.extend(der::tlv(&[0x50], label.as_bytes()));
            content.extend(der::tlv(&[0x51], app_path));
            der::tlv(&[0x61], &content)
        })
        .collect()
}

/// ODF: `[0]` PrKDF, `[4]` CDF, `[8]` AODF, each a Path (absolute paths).
pub fn odf(prkdf: &[u8], cdf: &[u8], aodf: &[u8]) -> Vec<u8> {
    let mut out = der::tlv(&[0xA0], &path(prkdf));
    out.extend(der::tlv(&[0xA4], &path(cdf)));
    out.extend(der::tlv(&[0xA8], &path(aodf)));
    out
}

/// TokenInfo: version 0, serial number, manufacturer, label `[0]`, token flags (readOnly,
/// prnGeneration).
pub fn token_info(serial: &[u8], manufacturer: &str, label: &str) -> Vec<u8> {
    der::sequence(&[
        der::integer(0),
        der::octet_string(serial),
        der::utf8_string(manufacturer),
        der::tlv(&[0x80], label.as_bytes()),
        bit_string(&[0, 2]),
    ])
}

/// PrKDF: privateRSAKey (`30`) or privateECKey (`[0]`) objects.
pub fn prkdf(keys: &[KeyEntry]) -> Vec<u8> {
    keys.iter()
        .flat_map(|k| {
            // KeyUsageFlags: sign(2), nonRepudiation(9).
            let usage = if k.non_repudiation {
                bit_string(&[9])
            } else {
                bit_string(&[2])
            };
            let common_key = der::sequence(&[
                der::octet_string(&[k.id]),
                usage,
                der::integer(u64::from(k.key_reference)),
            ]);
            // PrivateRSAKeyAttributes {value, modulusLength}; for EC the same shape carries the
            // field size.
            let type_attributes = der::sequence(&[path(&k.path), der::integer(u64::from(k.bits))]);
            let body = [
                common_object(k.label, true, Some(k.auth_id)),
                common_key,
                der::tlv(&[0xA1], &type_attributes),
            ]
            .concat();
            der::tlv(&[if k.ec { 0xA0 } else { 0x30 }], &body)
        })
        .collect()
}

/// CDF: x509Certificate objects with their paths.
pub fn cdf(certs: &[CertEntry]) -> Vec<u8> {
    certs
        .iter()
        .flat_map(|c| {
            let mut common_cert = vec![der::octet_string(&[c.id])];
            if c.authority {
                common_cert.push(der::boolean(true));
            }
            der::sequence(&[
                common_object(c.label, false, None),
                der::sequence(&common_cert),
                der::tlv(&[0xA1], &der::sequence(&[path(&c.path)])),
            ])
        })
        .collect()
}

/// AODF: PIN objects (ascii-numeric, 4 to 8 digits, stored as 8 bytes padded with FF,
/// initialized, needs-padding).
pub fn aodf(pins: &[PinEntry]) -> Vec<u8> {
    pins.iter()
        .flat_map(|p| {
            let attributes = der::sequence(&[
                // PinFlags: initialized(4), needsPadding(5) (global PINs, as OpenSC expects of a user PIN).
                bit_string(&[4, 5]),
                // PinType ascii-numeric.
                der::tlv(&[0x0A], &[0x01]),
                der::integer(4),
                der::integer(8),
                der::integer(8),
                der::tlv(
                    &[0x80],
                    der::integer(u64::from(p.reference))
                        .get(2..)
                        .unwrap_or_default(),
                ),
                der::octet_string(&[0xFF]),
            ]);
            der::sequence(&[
                common_object(p.label, true, None),
                der::sequence(&[der::octet_string(&[p.auth_id])]),
                der::tlv(&[0xA1], &attributes),
            ])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn bit_strings() {
        assert_eq!(bit_string(&[0]), [0x03, 0x02, 0x07, 0x80]);
        assert_eq!(bit_string(&[9]), [0x03, 0x03, 0x06, 0x00, 0x40]);
        assert_eq!(bit_string(&[4, 5]), [0x03, 0x02, 0x02, 0x0C]);
    }

    #[test]
    fn pin_reference_is_a_positive_integer() {
        let a = aodf(&[PinEntry {
            label: "Auth PIN",
            auth_id: 1,
            reference: 0x81,
        }]);
        assert!(a.windows(4).any(|w| w == [0x80, 0x02, 0x00, 0x81]));
    }
}
