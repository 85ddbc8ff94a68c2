//! The card's file system: a master file, dedicated files (with a file identifier and an optional
//! DF name) and transparent elementary files, ISO/IEC 7816-4:2005 §5.3.
//!
//! Profiles describe the tree declaratively with [`Df`] and [`Ef`]; the engine turns it into a
//! [`FileSystem`] (an arena addressed by [`FileRef`]) and resolves SELECT targets in it.
//! Record-oriented EFs, BER-TLV EFs, file life cycles beyond "operational" and file creation or
//! deletion are not emulated.

use std::fmt;

/// An access condition, for reading or updating a file or for using a key.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Access {
    /// No condition.
    Always,
    /// Not allowed at all.
    Never,
    /// Allowed once the PIN with this reference has been verified in the current card session.
    Pin(u8),
}

/// A transparent EF, as a profile declares it.
#[derive(Clone)]
pub struct Ef {
    fid: u16,
    sfi: Option<u8>,
    data: Vec<u8>,
    read: Access,
    update: Access,
}

impl Ef {
    /// An EF that anyone may read and nobody may update.
    pub fn new(fid: u16, data: impl Into<Vec<u8>>) -> Self {
        Ef {
            fid,
            sfi: None,
            data: data.into(),
            read: Access::Always,
            update: Access::Never,
        }
    }

    /// Gives the EF a short EF identifier (1 to 30; other values are ignored).
    #[must_use]
    pub fn sfi(mut self, sfi: u8) -> Self {
        self.sfi = (1..=30).contains(&sfi).then_some(sfi);
        self
    }

    /// Sets the condition for READ BINARY.
    #[must_use]
    pub fn read(mut self, access: Access) -> Self {
        self.read = access;
        self
    }

    /// Sets the condition for UPDATE BINARY (the default is [`Access::Never`]).
    #[must_use]
    pub fn update(mut self, access: Access) -> Self {
        self.update = access;
        self
    }
}

/// Shows everything but the contents.
impl fmt::Debug for Ef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ef")
            .field("fid", &format_args!("{:04X}", self.fid))
            .field("sfi", &self.sfi)
            .field("len", &self.data.len())
            .field("read", &self.read)
            .field("update", &self.update)
            .finish()
    }
}

/// A DF (or the MF) and its children, as a profile declares it.
#[derive(Clone, Debug)]
pub struct Df {
    fid: u16,
    name: Option<Vec<u8>>,
    children: Vec<Node>,
}

#[derive(Clone, Debug)]
enum Node {
    Df(Df),
    Ef(Ef),
}

impl Df {
    /// The master file, 3F00.
    pub fn mf() -> Self {
        Df::new(MF_FID)
    }

    /// A DF with this file identifier.
    pub fn new(fid: u16) -> Self {
        Df {
            fid,
            name: None,
            children: Vec::new(),
        }
    }

    /// Gives the DF a name (an application identifier, 1 to 16 bytes), for SELECT by DF name.
    #[must_use]
    pub fn name(mut self, aid: impl Into<Vec<u8>>) -> Self {
        self.name = Some(aid.into());
        self
    }

    /// Adds an EF child.
    #[must_use]
    pub fn ef(mut self, ef: Ef) -> Self {
        self.children.push(Node::Ef(ef));
        self
    }

    /// Adds a DF child.
    #[must_use]
    pub fn df(mut self, df: Df) -> Self {
        self.children.push(Node::Df(df));
        self
    }
}

/// The file identifier of the master file.
pub const MF_FID: u16 = 0x3F00;

/// A file in a [`FileSystem`]. Only meaningful for the file system that handed it out.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct FileRef(usize);

/// The file tree of one card.
pub struct FileSystem {
    nodes: Vec<Entry>,
}

struct Entry {
    fid: u16,
    parent: Option<usize>,
    kind: Kind,
}

enum Kind {
    Df {
        name: Option<Vec<u8>>,
        children: Vec<usize>,
    },
    Ef(EfBody),
}

struct EfBody {
    sfi: Option<u8>,
    data: Vec<u8>,
    read: Access,
    update: Access,
}

impl FileSystem {
    /// Builds the file system from its root (normally [`Df::mf`]).
    pub fn new(root: Df) -> Self {
        let mut fs = FileSystem { nodes: Vec::new() };
        fs.insert_df(root, None);
        fs
    }

    fn insert_df(&mut self, df: Df, parent: Option<usize>) -> usize {
        let index = self.nodes.len();
        self.nodes.push(Entry {
            fid: df.fid,
            parent,
            kind: Kind::Df {
                name: df.name,
                children: Vec::new(),
            },
        });
        let mut children = Vec::with_capacity(df.children.len());
        for child in df.children {
            let child_index = match child {
                Node::Df(sub) => self.insert_df(sub, Some(index)),
                Node::Ef(ef) => {
                    let i = self.nodes.len();
                    self.nodes.push(Entry {
                        fid: ef.fid,
                        parent: Some(index),
                        kind: Kind::Ef(EfBody {
                            sfi: ef.sfi,
                            data: ef.data,
                            read: ef.read,
                            update: ef.update,
                        }),
                    });
                    i
                }
            };
            children.push(child_index);
        }
        if let Some(Entry {
            kind: Kind::Df { children: slot, .. },
            ..
        }) = self.nodes.get_mut(index)
        {
            *slot = children;
        }
        index
    }

    fn entry(&self, file: FileRef) -> Option<&Entry> {
        self.nodes.get(file.0)
    }

    fn ef(&self, file: FileRef) -> Option<&EfBody> {
        match self.entry(file)?.kind {
            Kind::Ef(ref body) => Some(body),
            Kind::Df { .. } => None,
        }
    }

    /// The root of the tree (the MF).
    pub fn mf(&self) -> FileRef {
        FileRef(0)
    }

    /// The file identifier.
    pub fn fid(&self, file: FileRef) -> Option<u16> {
        self.entry(file).map(|e| e.fid)
    }

    /// Whether the file is a DF (or the MF).
    pub fn is_df(&self, file: FileRef) -> bool {
        matches!(
            self.entry(file),
            Some(Entry {
                kind: Kind::Df { .. },
                ..
            })
        )
    }

    /// The DF holding `file`; `None` for the MF.
    pub fn parent(&self, file: FileRef) -> Option<FileRef> {
        self.entry(file)?.parent.map(FileRef)
    }

    /// The DF name, for a DF that has one.
    pub fn name(&self, file: FileRef) -> Option<&[u8]> {
        match &self.entry(file)?.kind {
            Kind::Df { name, .. } => name.as_deref(),
            Kind::Ef(_) => None,
        }
    }

    /// The children of a DF, in declaration order (nothing for an EF).
    pub fn children(&self, df: FileRef) -> impl Iterator<Item = FileRef> + '_ {
        let children: &[usize] = match self.entry(df) {
            Some(Entry {
                kind: Kind::Df { children, .. },
                ..
            }) => children,
            _ => &[],
        };
        children.iter().map(|&i| FileRef(i))
    }

    /// The child of `df` with this file identifier.
    pub fn child(&self, df: FileRef, fid: u16) -> Option<FileRef> {
        self.children(df).find(|&c| self.fid(c) == Some(fid))
    }

    /// The EF child of `df` with this short EF identifier.
    pub fn child_by_sfi(&self, df: FileRef, sfi: u8) -> Option<FileRef> {
        self.children(df)
            .find(|&c| self.ef(c).is_some_and(|ef| ef.sfi == Some(sfi)))
    }

    /// A DF by name: an exact match first, else the first DF whose name starts with `name`
    /// (right-truncated names, ISO/IEC 7816-4:2005 §7.1.1).
    pub fn df_by_name(&self, name: &[u8]) -> Option<FileRef> {
        let dfs = || {
            self.nodes
                .iter()
                .enumerate()
                .filter_map(|(i, e)| match &e.kind {
                    Kind::Df { name: Some(n), .. } => Some((FileRef(i), n.as_slice())),
                    _ => None,
                })
        };
        dfs()
            .find(|(_, n)| *n == name)
            .or_else(|| dfs().find(|(_, n)| n.starts_with(name)))
            .map(|(f, _)| f)
    }

    /// Follows `path` (file identifiers) from the DF `from`: each step is a child of the previous
    /// DF. An empty path is `from` itself.
    pub fn resolve(&self, from: FileRef, path: &[u16]) -> Option<FileRef> {
        let mut at = from;
        for &fid in path {
            if !self.is_df(at) {
                return None;
            }
            at = self.child(at, fid)?;
        }
        Some(at)
    }

    /// Follows a path from the MF; a leading 3F00 is allowed.
    pub fn resolve_from_mf(&self, path: &[u16]) -> Option<FileRef> {
        let path = match path.split_first() {
            Some((&MF_FID, rest)) => rest,
            _ => path,
        };
        self.resolve(self.mf(), path)
    }

    /// The contents of a transparent EF.
    pub fn data(&self, file: FileRef) -> Option<&[u8]> {
        self.ef(file).map(|ef| ef.data.as_slice())
    }

    /// The contents of a transparent EF, for profiles that change files behind the engine.
    pub fn data_mut(&mut self, file: FileRef) -> Option<&mut Vec<u8>> {
        match self.nodes.get_mut(file.0)?.kind {
            Kind::Ef(ref mut body) => Some(&mut body.data),
            Kind::Df { .. } => None,
        }
    }

    /// The READ BINARY condition of an EF.
    pub fn read_access(&self, file: FileRef) -> Option<Access> {
        self.ef(file).map(|ef| ef.read)
    }

    /// The UPDATE BINARY condition of an EF.
    pub fn update_access(&self, file: FileRef) -> Option<Access> {
        self.ef(file).map(|ef| ef.update)
    }

    /// The short EF identifier of an EF, if it has one.
    pub fn sfi(&self, file: FileRef) -> Option<u8> {
        self.ef(file)?.sfi
    }

    /// The file control parameters (the content of an FCP or FCI template): 80 size (EFs),
    /// 82 descriptor, 83 file identifier, 84 DF name, 88 SFI, 8A life cycle.
    pub fn control_parameters(&self, file: FileRef) -> Option<Vec<u8>> {
        let entry = self.entry(file)?;
        let mut out = Vec::new();
        match &entry.kind {
            Kind::Ef(ef) => {
                let size = ef.data.len().to_be_bytes();
                // At least two bytes, as many as the size needs.
                let skip = size
                    .iter()
                    .take_while(|&&b| b == 0)
                    .count()
                    .min(size.len() - 2);
                let size = size.get(skip..).unwrap_or_default();
                out.extend([0x80, size.len() as u8]);
                out.extend_from_slice(size);
                // Working EF, transparent structure.
                out.extend([0x82, 0x01, 0x01]);
            }
            // DF.
            Kind::Df { .. } => out.extend([0x82, 0x01, 0x38]),
        }
        out.extend([0x83, 0x02]);
        out.extend(entry.fid.to_be_bytes());
        match &entry.kind {
            Kind::Df {
                name: Some(name), ..
            } => {
                out.extend([0x84, name.len().min(0x7F) as u8]);
                out.extend(name.iter().take(0x7F));
            }
            Kind::Ef(EfBody { sfi: Some(sfi), .. }) => out.extend([0x88, 0x01, sfi << 3]),
            _ => {}
        }
        // Operational state, activated.
        out.extend([0x8A, 0x01, 0x05]);
        Some(out)
    }
}

impl fmt::Debug for FileSystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileSystem")
            .field("files", &self.nodes.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eid_protocols::fci::FileControl;

    fn tree() -> FileSystem {
        FileSystem::new(
            Df::mf()
                .ef(Ef::new(0x2F00, vec![1, 2, 3]))
                .df(Df::new(0x5000)
                    .name(b"APP".to_vec())
                    .ef(Ef::new(0x0101, vec![0; 300]).sfi(1)))
                .df(Df::new(0x6000).name(b"APPLICATION".to_vec())),
        )
    }

    #[test]
    fn resolves_paths_names_and_sfis() {
        let fs = tree();
        let app = fs.resolve_from_mf(&[0x5000]).unwrap();
        assert_eq!(fs.resolve_from_mf(&[0x3F00, 0x5000]), Some(app));
        let ef = fs.resolve(app, &[0x0101]).unwrap();
        assert_eq!(fs.child_by_sfi(app, 1), Some(ef));
        assert_eq!(fs.parent(ef), Some(app));
        assert_eq!(fs.df_by_name(b"APP"), Some(app));
        assert_eq!(fs.df_by_name(b"APPL"), fs.resolve_from_mf(&[0x6000]));
        assert_eq!(fs.resolve(ef, &[0x0101]), None);
        assert_eq!(fs.data(app), None);
    }

    #[test]
    fn control_parameters_parse_back() {
        let fs = tree();
        let ef = fs.resolve_from_mf(&[0x5000, 0x0101]).unwrap();
        let mut fcp = vec![0x62, 0];
        fcp.extend(fs.control_parameters(ef).unwrap());
        fcp[1] = (fcp.len() - 2) as u8;
        let fc = FileControl::parse(&fcp).unwrap();
        assert_eq!(
            (fc.size, fc.fid, fc.sfi, fc.is_df()),
            (Some(300), Some(0x0101), Some(1), false)
        );
    }
}
