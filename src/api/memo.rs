//! The embeddings of queries made in the current statement, so that a query embeds its
//! text once even when its plan evaluates the call for every row: a sequential scan
//! ordered by `embedding <=> ai.vectorizer_embed(…)` asks the provider once and, for
//! each row after the first, copies the embedding this memo holds.

use std::cell::{OnceCell, RefCell};
use std::rc::Rc;

use pgrx::callconv::{BoxRet, FcInfo};
use pgrx::datum::Datum;
use pgrx::pgrx_sql_entity_graph::metadata::{
    ArgumentError, ReturnsError, ReturnsRef, SqlMappingRef, SqlTranslatable, TypeOrigin,
};
use pgrx::prelude::*;

/// Which vectorizer (or configuration) a query is embedded with.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum By<'a> {
    Config(&'a str),
    Id(i32),
    Name(&'a str),
}

impl By<'_> {
    fn owned(self) -> OwnedBy {
        match self {
            By::Config(c) => OwnedBy::Config(c.into()),
            By::Id(id) => OwnedBy::Id(id),
            By::Name(n) => OwnedBy::Name(n.into()),
        }
    }
}

enum OwnedBy {
    Config(String),
    Id(i32),
    Name(String),
}

impl OwnedBy {
    fn is(&self, by: By<'_>) -> bool {
        match (self, by) {
            (OwnedBy::Config(a), By::Config(b)) | (OwnedBy::Name(a), By::Name(b)) => a == b,
            (OwnedBy::Id(a), By::Id(b)) => *a == b,
            _ => false,
        }
    }
}

/// When a call is made: the transaction, the statement and the command within it (a
/// command that changed data — the vectorizer's configuration, say — starts another),
/// and the role calling. Calls made at the same `Statement` get the same embedding.
#[derive(PartialEq, Eq, Clone, Copy)]
struct Statement {
    transaction: pg_sys::TimestampTz,
    statement: pg_sys::TimestampTz,
    command: pg_sys::CommandId,
    user: pg_sys::Oid,
}

impl Statement {
    fn current() -> Self {
        // SAFETY: plain reads of the backend's transaction state, in a transaction.
        unsafe {
            Statement {
                transaction: pg_sys::GetCurrentTransactionStartTimestamp(),
                statement: pg_sys::GetCurrentStatementStartTimestamp(),
                command: pg_sys::GetCurrentCommandId(false),
                user: pg_sys::GetUserId(),
            }
        }
    }
}

/// A query's embedding: its values, and the datums the SQL functions return — a
/// `real[]`, or pgvector's `vector` — each made once.
pub struct Embedded {
    pub floats: Vec<f32>,
    array: OnceCell<Rc<[u8]>>,
    vector: OnceCell<Rc<[u8]>>,
}

impl Embedded {
    fn new(floats: Vec<f32>) -> Self {
        Embedded {
            floats,
            array: OnceCell::new(),
            vector: OnceCell::new(),
        }
    }

    /// The embedding returned as `real[]`.
    pub fn as_array(self: Rc<Self>) -> Flat {
        Flat {
            embedded: self,
            as_vector: false,
        }
    }

    /// The embedding returned as the function's return type, pgvector's `vector`.
    pub fn as_vector(self: Rc<Self>) -> Flat {
        Flat {
            embedded: self,
            as_vector: true,
        }
    }

    fn array(&self) -> &[u8] {
        self.array.get_or_init(|| {
            let datum = self.floats.clone().into_datum().expect("an array");
            // SAFETY: the array just made, a varlena in this memory context.
            unsafe { owned_varlena(datum) }
        })
    }

    /// Made by the type's input function, from the text pgvector reads (`[1,2,3]`;
    /// each value printed so that it reads back the same).
    fn vector(&self, rettype: pg_sys::Oid) -> &[u8] {
        self.vector.get_or_init(|| {
            let text: Vec<String> = self.floats.iter().map(f32::to_string).collect();
            let text = std::ffi::CString::new(format!("[{}]", text.join(","))).expect("no NUL");
            let (mut input, mut ioparam) = (pg_sys::InvalidOid, pg_sys::InvalidOid);
            // SAFETY: `rettype` is the type the function is declared to return; its
            // input function makes a varlena in this memory context.
            unsafe {
                pg_sys::getTypeInputInfo(rettype, &mut input, &mut ioparam);
                let datum =
                    pg_sys::OidInputFunctionCall(input, text.as_ptr().cast_mut(), ioparam, -1);
                owned_varlena(datum)
            }
        })
    }
}

/// A copy of the varlena `datum` points to, which is freed.
///
/// # Safety
/// `datum` points to a palloc'd, untoasted varlena.
unsafe fn owned_varlena(datum: pg_sys::Datum) -> Rc<[u8]> {
    unsafe {
        let pointer = datum.cast_mut_ptr::<u8>();
        let length = pgrx::varlena::varsize_any(pointer.cast());
        let bytes = std::slice::from_raw_parts(pointer, length).into();
        pg_sys::pfree(pointer.cast());
        bytes
    }
}

/// An embedding to return: a copy of the datum made once.
pub struct Flat {
    embedded: Rc<Embedded>,
    as_vector: bool,
}

// SAFETY: the datum of the function's return type, copied into the memory context of
// the call.
unsafe impl BoxRet for Flat {
    unsafe fn box_into<'fcx>(self, fcinfo: &mut FcInfo<'fcx>) -> Datum<'fcx> {
        // SAFETY: a function called by the executor has its flinfo; the copy is
        // palloc'd memory of the datum's length.
        unsafe {
            let bytes = if self.as_vector {
                let function = (*(*fcinfo.as_mut_ptr()).flinfo).fn_oid;
                self.embedded.vector(pg_sys::get_func_rettype(function))
            } else {
                self.embedded.array()
            };
            let copy = pg_sys::palloc(bytes.len()).cast::<u8>();
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), copy, bytes.len());
            fcinfo.return_raw_datum(pg_sys::Datum::from(copy))
        }
    }
}

// SAFETY: `Flat` is declared as `real[]`; the functions returning `vector` are declared
// by hand (`ai._define_vectorizer_embed`).
unsafe impl SqlTranslatable for Flat {
    const TYPE_IDENT: &'static str = pgrx::pgrx_resolved_type!(Flat);
    const TYPE_ORIGIN: TypeOrigin = TypeOrigin::External;
    const ARGUMENT_SQL: Result<SqlMappingRef, ArgumentError> =
        Err(ArgumentError::NotValidAsArgument("Flat"));
    const RETURN_SQL: Result<ReturnsRef, ReturnsError> =
        Ok(ReturnsRef::One(SqlMappingRef::literal("real[]")));
}

/// The embeddings computed at one `Statement`: a handful of distinct query texts at
/// most, in practice; past `MEMO_ENTRIES` of them it starts afresh.
/// A lookup allocates nothing: it runs for every row of a sequential scan.
struct Memo {
    at: Option<Statement>,
    embeddings: Vec<(OwnedBy, String, Rc<Embedded>)>,
}

const MEMO_ENTRIES: usize = 64;

thread_local! {
    static MEMO: RefCell<Memo> = const { RefCell::new(Memo { at: None, embeddings: Vec::new() }) };
}

/// The embedding of `text` by `by` made earlier in this statement, else `compute`'s
/// (which checks the caller's rights and may raise an ERROR; nothing is kept then).
pub fn memoized(by: By<'_>, text: &str, compute: impl FnOnce() -> Vec<f32>) -> Rc<Embedded> {
    let now = Statement::current();
    let found = MEMO.with_borrow_mut(|memo| {
        if memo.at != Some(now) || memo.embeddings.len() >= MEMO_ENTRIES {
            memo.at = Some(now);
            memo.embeddings.clear();
        }
        (memo.embeddings.iter())
            .find(|(b, t, _)| b.is(by) && t == text)
            .map(|(_, _, embedded)| Rc::clone(embedded))
    });
    if let Some(embedded) = found {
        return embedded;
    }
    let embedded = Rc::new(Embedded::new(compute()));
    MEMO.with_borrow_mut(|memo| {
        if memo.at == Some(now) {
            (memo.embeddings).push((by.owned(), text.to_string(), Rc::clone(&embedded)));
        }
    });
    embedded
}
