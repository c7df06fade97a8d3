//! The module's half of the host ABI: the imports it calls, the exports the host calls, and
//! the registry that `#[procedure]` fills. Nothing here is for module authors to call.
//!
//! The host instantiates a module, calls every export named `__procyon_preinit__*` in name
//! order (each registers one function), then `__procyon_describe__` once to learn the module,
//! and `__procyon_call__` for every call.

use crate::function::{ProcedureFn, ReducerFn};
use crate::procedure::ProcedureContext;
use crate::reducer::ReducerContext;
use crate::sats::{encode_len, AlgebraicType, DecodeError, Element, ProcyonType, Typespace};
use crate::{ConnectionId, Identity, Timestamp};
use std::cell::RefCell;
use std::rc::Rc;

#[cfg(target_arch = "wasm32")]
pub(crate) mod sys {
    #[link(wasm_import_module = "procyon")]
    extern "C" {
        pub fn console_log(
            level: u32,
            target: *const u8,
            target_len: usize,
            file: *const u8,
            file_len: usize,
            line: u32,
            message: *const u8,
            message_len: usize,
        );
        pub fn panic(message: *const u8, message_len: usize, file: *const u8, file_len: usize, line: u32);
        pub fn args_read(dst: *mut u8);
        pub fn result_write(src: *const u8, len: usize);
        pub fn caller_identity(dst: *mut u8);
        pub fn database_identity(dst: *mut u8);
        /// Writes the call's hub connection id (16 bytes, a little-endian u128) and returns 1,
        /// or returns 0 for a call without one.
        pub fn connection_id(dst: *mut u8) -> i32;
        /// 32 bytes of the host's operating-system randomness.
        pub fn random_seed(dst: *mut u8);
        /// The database's UUID v7 clock on this server: milliseconds since the Unix epoch times
        /// 2^16 plus a counter, larger at every call.
        pub fn uuid_v7_clock() -> i64;
        /// Suspends the call (the host unwinds and later rewinds the wasm stack) and returns
        /// the time it woke, in microseconds since the Unix epoch.
        pub fn sleep_until(target_micros: i64) -> i64;
        /// Copies the host's reply to the last table call (its length was that call's result).
        pub fn buffer_read(dst: *mut u8);
        /// The length of that reply, for replies whose length the call could not return.
        pub fn buffer_len() -> u32;
        // Table calls suspend like sleep_until while the host talks to Postgres. A result >= 0
        // is a count or the length of a reply in the buffer; negative results are TABLE_* codes.
        pub fn table_insert(table: *const u8, table_len: usize, row: *const u8, row_len: usize) -> i64;
        /// Opens a cursor over the whole table (`index` = SCAN_WHOLE_TABLE) or an index's rows
        /// within `bounds`; the reply is the first chunk: `u32` cursor (0 when it is the last) and rows.
        pub fn table_iter(table: *const u8, table_len: usize, index: i32, bounds: *const u8, bounds_len: usize) -> i64;
        /// The cursor's next chunk, in the same form.
        pub fn table_next(cursor: u32) -> i64;
        /// Closes a cursor the module stopped reading (with the transaction's next statement).
        pub fn table_close(cursor: u32);
        /// Deletes an index's rows within `bounds`; returns how many went.
        pub fn table_delete_range(table: *const u8, table_len: usize, index: i32, bounds: *const u8, bounds_len: usize) -> i64;
        pub fn table_count(table: *const u8, table_len: usize) -> i64;
        pub fn table_find(table: *const u8, table_len: usize, column: u32, key: *const u8, key_len: usize) -> i64;
        pub fn table_delete_by(table: *const u8, table_len: usize, column: u32, key: *const u8, key_len: usize) -> i64;
        pub fn table_update_by(table: *const u8, table_len: usize, column: u32, row: *const u8, row_len: usize) -> i64;
        pub fn table_delete_row(table: *const u8, table_len: usize, row: *const u8, row_len: usize) -> i64;
        /// Opens a transaction for a procedure's `with_tx`.
        pub fn tx_begin() -> i64;
        /// Commits it: 0, or TX_RETRY when Postgres could not serialize it (the closure runs again).
        pub fn tx_commit() -> i64;
        pub fn tx_rollback() -> i64;
        /// Sends an HTTP request (suspends like sleep_until): >= 0 is the length of the response
        /// in the buffer, < 0 an HTTP_* code with the message in the buffer.
        pub fn http_request(request: *const u8, request_len: usize, body: *const u8, body_len: usize) -> i64;
    }
}

/// Outside wasm (the SDK's own `cargo test` on the build machine) there is no host: the value
/// codec works, calling into the host does not.
#[cfg(not(target_arch = "wasm32"))]
#[allow(clippy::missing_safety_doc)]
pub(crate) mod sys {
    const NO_HOST: &str = "the Procyon host exists only inside a wasm module";

    pub unsafe fn console_log(_: u32, _: *const u8, _: usize, _: *const u8, _: usize, _: u32, _: *const u8, _: usize) {
        unreachable!("{}", NO_HOST)
    }
    pub unsafe fn panic(_: *const u8, _: usize, _: *const u8, _: usize, _: u32) {
        unreachable!("{}", NO_HOST)
    }
    pub unsafe fn args_read(_: *mut u8) {
        unreachable!("{}", NO_HOST)
    }
    pub unsafe fn result_write(_: *const u8, _: usize) {
        unreachable!("{}", NO_HOST)
    }
    pub unsafe fn caller_identity(_: *mut u8) {
        unreachable!("{}", NO_HOST)
    }
    pub unsafe fn database_identity(_: *mut u8) {
        unreachable!("{}", NO_HOST)
    }
    pub unsafe fn connection_id(_: *mut u8) -> i32 {
        unreachable!("{}", NO_HOST)
    }
    pub unsafe fn random_seed(_: *mut u8) {
        unreachable!("{}", NO_HOST)
    }
    pub unsafe fn uuid_v7_clock() -> i64 {
        unreachable!("{}", NO_HOST)
    }
    pub unsafe fn sleep_until(_: i64) -> i64 {
        unreachable!("{}", NO_HOST)
    }
    pub unsafe fn buffer_read(_: *mut u8) {
        unreachable!("{}", NO_HOST)
    }
    pub unsafe fn buffer_len() -> u32 {
        unreachable!("{}", NO_HOST)
    }
    pub unsafe fn table_insert(_: *const u8, _: usize, _: *const u8, _: usize) -> i64 {
        unreachable!("{}", NO_HOST)
    }
    pub unsafe fn table_iter(_: *const u8, _: usize, _: i32, _: *const u8, _: usize) -> i64 {
        unreachable!("{}", NO_HOST)
    }
    pub unsafe fn table_next(_: u32) -> i64 {
        unreachable!("{}", NO_HOST)
    }
    pub unsafe fn table_close(_: u32) {
        unreachable!("{}", NO_HOST)
    }
    pub unsafe fn table_delete_range(_: *const u8, _: usize, _: i32, _: *const u8, _: usize) -> i64 {
        unreachable!("{}", NO_HOST)
    }
    pub unsafe fn table_count(_: *const u8, _: usize) -> i64 {
        unreachable!("{}", NO_HOST)
    }
    pub unsafe fn table_find(_: *const u8, _: usize, _: u32, _: *const u8, _: usize) -> i64 {
        unreachable!("{}", NO_HOST)
    }
    pub unsafe fn table_delete_by(_: *const u8, _: usize, _: u32, _: *const u8, _: usize) -> i64 {
        unreachable!("{}", NO_HOST)
    }
    pub unsafe fn table_update_by(_: *const u8, _: usize, _: u32, _: *const u8, _: usize) -> i64 {
        unreachable!("{}", NO_HOST)
    }
    pub unsafe fn table_delete_row(_: *const u8, _: usize, _: *const u8, _: usize) -> i64 {
        unreachable!("{}", NO_HOST)
    }
    pub unsafe fn tx_begin() -> i64 {
        unreachable!("{}", NO_HOST)
    }
    pub unsafe fn tx_commit() -> i64 {
        unreachable!("{}", NO_HOST)
    }
    pub unsafe fn tx_rollback() -> i64 {
        unreachable!("{}", NO_HOST)
    }
    pub unsafe fn http_request(_: *const u8, _: usize, _: *const u8, _: usize) -> i64 {
        unreachable!("{}", NO_HOST)
    }
}

// The numbers below are the ABI's (src/abi/README.md, checked by tests/abi.rs); the host's
// twins are in src/Procyon.Runtime.
pub const KIND_PROCEDURE: u8 = 0;
pub const KIND_REDUCER: u8 = 1;
pub const KIND_INIT_REDUCER: u8 = 2;
pub const KIND_CLIENT_CONNECTED: u8 = 3;
pub const KIND_CLIENT_DISCONNECTED: u8 = 4;

/// Function flag: results reach every subscriber, not only the caller and the owner.
pub const FUNCTION_PUBLIC: u8 = 1;

pub const COLUMN_PRIMARY_KEY: u8 = 1;
pub const COLUMN_AUTO_INC: u8 = 2;
pub const COLUMN_UNIQUE: u8 = 4;
pub const COLUMN_INDEXED: u8 = 8;
/// Column flag: the column's `#[default(value)]` (BSATN of its type) follows its flags.
pub const COLUMN_DEFAULT: u8 = 16;

pub const STATUS_OK: u32 = 0;
pub const STATUS_BAD_ARGUMENTS: u32 = 2;
pub const STATUS_NO_SUCH_FUNCTION: u32 = 3;
pub const STATUS_FAILED: u32 = 4;

/// A table import's result: the row's unique key is taken (the buffer holds the message).
pub const TABLE_UNIQUE_VIOLATION: i64 = -1;
/// A table import's result: no row has that key.
pub const TABLE_NOT_FOUND: i64 = -2;

/// `table_iter`'s index for a scan of the whole table.
pub const SCAN_WHOLE_TABLE: i32 = -1;

// How each end of an index range is bounded (src/abi/README.md, "Index bounds").
pub const BOUND_INCLUDED: u8 = 0;
pub const BOUND_EXCLUDED: u8 = 1;
pub const BOUND_UNBOUNDED: u8 = 2;

/// `tx_commit`'s result when Postgres could not serialize the transaction: run the closure again.
pub const TX_RETRY: i64 = 1;

// `http_request`'s results when no response came (the buffer holds the message).
pub const HTTP_INVALID_REQUEST: i64 = -1;
pub const HTTP_REFUSED: i64 = -2;
pub const HTTP_TIMEOUT: i64 = -3;
pub const HTTP_TOO_LARGE: i64 = -4;
pub const HTTP_NETWORK: i64 = -5;

/// What an exported function returned: a value, or (for reducers) an error that rolls back.
pub enum Outcome {
    Value(Vec<u8>),
    Failed(String),
}

/// Who made a call, when and over which connection: what a context starts from.
#[derive(Clone, Copy)]
pub struct CallInfo {
    pub timestamp: Timestamp,
    pub sender: Identity,
    pub connection_id: Option<ConnectionId>,
}

type Invoke = Rc<dyn Fn(CallInfo, &mut &[u8]) -> Result<Outcome, DecodeError>>;

struct Function {
    name: &'static str,
    kind: u8,
    flags: u8,
    params: Vec<Element>,
    return_type: AlgebraicType,
    invoke: Invoke,
}

/// A `#[table]` as the host learns it: the row type and what each column is.
struct TableDef {
    name: &'static str,
    row_type: AlgebraicType,
    public: bool,
    columns: Vec<Column>,
    /// For a scheduled table: the reducer or procedure its rows name, how often a failed run is
    /// tried again and the first retry's delay in microseconds.
    scheduled: Option<(&'static str, u32, i64)>,
    /// `index(accessor = x, btree(columns = [..]))`: each index's name and column positions.
    indexes: &'static [(&'static str, &'static [u32])],
}

/// A column's name, `COLUMN_*` flags and, for `#[default(value)]`, the value as BSATN of its type.
pub type Column = (&'static str, u8, Option<Vec<u8>>);

/// Called by the code `#[table]` generates for `#[default(value)]`: the value as the description carries it.
pub fn column_default<T: ProcyonType>(value: T) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    value.encode(&mut out);
    Some(out)
}

#[derive(Default)]
struct Registry {
    typespace: Typespace,
    functions: Vec<Function>,
    tables: Vec<TableDef>,
    /// `allowed_http_hosts!`: the only hosts the module's requests may reach.
    http_hosts: Option<&'static [&'static str]>,
}

thread_local! {
    static REGISTRY: RefCell<Registry> = RefCell::new(Registry::default());
}

/// Called by the code `#[procedure]` generates.
pub fn register_procedure<Args, F: ProcedureFn<Args>>(name: &'static str, public: bool, param_names: &'static [&'static str], f: F) {
    register(name, KIND_PROCEDURE, public, param_names, F::param_types, F::return_type, move |call, args| {
        let mut ctx = ProcedureContext::new(call.timestamp, call.sender, call.connection_id);
        f.invoke(&mut ctx, args)
    });
}

/// Called by the code `#[reducer]` generates; `kind` is `KIND_REDUCER` or the lifecycle it runs in
/// (`KIND_INIT_REDUCER`, `KIND_CLIENT_CONNECTED`, `KIND_CLIENT_DISCONNECTED`).
pub fn register_reducer<Args, F: ReducerFn<Args>>(name: &'static str, kind: u8, public: bool, param_names: &'static [&'static str], f: F) {
    register(name, kind, public, param_names, F::param_types, |_| AlgebraicType::unit(), move |call, args| {
        let ctx = ReducerContext::new(call.timestamp, call.sender, call.connection_id);
        f.invoke(&ctx, args)
    });
}

/// Called by the code `#[table]` generates. Column flags are the `COLUMN_*` bits; `COLUMN_DEFAULT`
/// is added here for the columns that have a default. `scheduled` is the function, retries and
/// first backoff (µs) of `scheduled(f, retries = n, backoff = "2s")`. `indexes` are the
/// table's `index(accessor = x, btree(columns = [..]))`.
pub fn register_table<Row: ProcyonType>(
    name: &'static str,
    public: bool,
    columns: Vec<Column>,
    scheduled: Option<(&'static str, u32, i64)>,
    indexes: &'static [(&'static str, &'static [u32])],
) {
    REGISTRY.with(|registry| {
        let mut registry = registry.borrow_mut();
        let row_type = Row::algebraic_type(&mut registry.typespace);
        registry.tables.push(TableDef { name, row_type, public, columns, scheduled, indexes });
    });
}

/// Called by the code `allowed_http_hosts!` generates.
pub fn register_http_hosts(hosts: &'static [&'static str]) {
    REGISTRY.with(|registry| registry.borrow_mut().http_hosts = Some(hosts));
}

/// Generated for `#[table(scheduled(f))]`: compiles only when `f` is a reducer or a procedure
/// that takes the table's row as its one argument.
pub fn scheduled_function<Row, Marker, F: crate::ExportFunctionForScheduledTable<Row, Marker>>(_function: &F) {}


fn register(
    name: &'static str,
    kind: u8,
    public: bool,
    param_names: &'static [&'static str],
    param_types: fn(&mut Typespace) -> Vec<AlgebraicType>,
    return_type: fn(&mut Typespace) -> AlgebraicType,
    invoke: impl Fn(CallInfo, &mut &[u8]) -> Result<Outcome, DecodeError> + 'static,
) {
    REGISTRY.with(|registry| {
        let mut registry = registry.borrow_mut();
        let typespace = &mut registry.typespace;
        let params = param_names.iter().zip(param_types(typespace)).map(|(n, ty)| Element::named(n, ty)).collect();
        let return_type = return_type(typespace);
        let flags = if public { FUNCTION_PUBLIC } else { 0 };
        registry.functions.push(Function { name, kind, flags, params, return_type, invoke: Rc::new(invoke) });
    });
}

#[export_name = "__procyon_preinit__00_sdk"]
extern "C" fn preinit_sdk() {
    // A closure, so its argument's type goes unnamed: `PanicInfo` here, `PanicHookInfo` since Rust 1.81.
    std::panic::set_hook(Box::new(|info| report_panic(info.payload(), info.location())));
    // Fails only if a logger is already set, which is then the one we set before.
    let _ = log::set_logger(&HostLogger);
    log::set_max_level(log::LevelFilter::Trace);
}

#[export_name = "__procyon_describe__"]
extern "C" fn describe() {
    let out = REGISTRY.with(|registry| {
        let registry = registry.borrow();
        let mut out = Vec::new();
        encode_len(registry.typespace.types.len(), &mut out);
        for ty in &registry.typespace.types {
            ty.encode(&mut out);
        }
        encode_len(registry.typespace.names.len(), &mut out);
        for (name, type_ref) in &registry.typespace.names {
            name.encode(&mut out);
            type_ref.encode(&mut out);
        }
        encode_len(registry.functions.len(), &mut out);
        for function in &registry.functions {
            function.name.to_owned().encode(&mut out);
            function.kind.encode(&mut out);
            function.flags.encode(&mut out);
            AlgebraicType::Product(function.params.clone()).encode(&mut out);
            function.return_type.encode(&mut out);
        }
        encode_len(registry.tables.len(), &mut out);
        for table in &registry.tables {
            table.name.to_owned().encode(&mut out);
            table.row_type.encode(&mut out);
            table.public.encode(&mut out);
            encode_len(table.columns.len(), &mut out);
            for (column, flags, default) in &table.columns {
                (*column).to_owned().encode(&mut out);
                match default {
                    Some(value) => {
                        (flags | COLUMN_DEFAULT).encode(&mut out);
                        value.encode(&mut out);
                    }
                    None => flags.encode(&mut out),
                }
            }
            match table.scheduled {
                // Tag 2, not an option's 1: a scheduled function with its retries.
                Some((function, retries, backoff)) if retries > 0 => {
                    out.push(2);
                    function.to_owned().encode(&mut out);
                    retries.encode(&mut out);
                    backoff.encode(&mut out);
                }
                scheduled => scheduled.map(|(function, _, _)| function.to_owned()).encode(&mut out),
            }
        }
        let indexes: Vec<_> = registry.tables.iter().flat_map(|t| t.indexes.iter().map(move |index| (t.name, index))).collect();
        encode_len(indexes.len(), &mut out);
        for (table, (name, columns)) in indexes {
            table.to_owned().encode(&mut out);
            (*name).to_owned().encode(&mut out);
            columns.to_vec().encode(&mut out);
        }
        // Optional: a module that declares no hosts writes nothing more.
        if let Some(hosts) = registry.http_hosts {
            encode_len(hosts.len(), &mut out);
            for host in hosts {
                (*host).to_owned().encode(&mut out);
            }
        }
        out
    });
    write_result(&out);
}

#[export_name = "__procyon_call__"]
extern "C" fn call(function_id: u32, timestamp_micros: i64, args_len: u32) -> u32 {
    let invoke = REGISTRY.with(|registry| registry.borrow().functions.get(function_id as usize).map(|f| f.invoke.clone()));
    let invoke = match invoke {
        Some(invoke) => invoke,
        None => {
            write_result(format!("no function with id {}", function_id).as_bytes());
            return STATUS_NO_SUCH_FUNCTION;
        }
    };
    let mut args = vec![0u8; args_len as usize];
    let mut sender = [0u8; 32];
    let mut connection = [0u8; 16];
    let connected = unsafe {
        sys::args_read(args.as_mut_ptr());
        sys::caller_identity(sender.as_mut_ptr());
        sys::connection_id(connection.as_mut_ptr()) == 1
    };
    let info = CallInfo {
        timestamp: Timestamp::from_micros_since_unix_epoch(timestamp_micros),
        sender: Identity::from_bytes(sender),
        connection_id: if connected { Some(ConnectionId::from_u128(u128::from_le_bytes(connection))) } else { None },
    };
    let mut input = &args[..];
    match invoke(info, &mut input) {
        Ok(Outcome::Value(result)) => {
            write_result(&result);
            STATUS_OK
        }
        Ok(Outcome::Failed(message)) => {
            write_result(message.as_bytes());
            STATUS_FAILED
        }
        Err(e) => {
            write_result(format!("bad arguments: {}", e).as_bytes());
            STATUS_BAD_ARGUMENTS
        }
    }
}

/// Space where Asyncify saves the wasm stack while a call sleeps. The host resets `start`
/// before each unwind; `end` bounds it.
const ASYNCIFY_STACK_BYTES: usize = 16 * 1024;

#[repr(C, align(8))]
struct AsyncifyData {
    start: u32,
    end: u32,
    stack: [u8; ASYNCIFY_STACK_BYTES],
}

static mut ASYNCIFY_DATA: AsyncifyData = AsyncifyData { start: 0, end: 0, stack: [0; ASYNCIFY_STACK_BYTES] };

#[export_name = "__procyon_asyncify_data__"]
extern "C" fn asyncify_data() -> u32 {
    // Safety: wasm modules are single-threaded and the host calls this only between calls.
    unsafe {
        let data = std::ptr::addr_of_mut!(ASYNCIFY_DATA);
        let stack = std::ptr::addr_of!((*data).stack) as u32;
        (*data).start = stack;
        (*data).end = stack + ASYNCIFY_STACK_BYTES as u32;
        data as u32
    }
}

/// The database's own identity: the caller of its scheduled runs.
pub fn database_identity() -> Identity {
    let mut bytes = [0u8; 32];
    unsafe { sys::database_identity(bytes.as_mut_ptr()) };
    Identity::from_bytes(bytes)
}

/// Copies the host's reply to the last call (`length` bytes) out of its buffer.
pub(crate) fn read_buffer(length: i64) -> Vec<u8> {
    let mut bytes = vec![0u8; length.max(0) as usize];
    unsafe { sys::buffer_read(bytes.as_mut_ptr()) };
    bytes
}

fn write_result(bytes: &[u8]) {
    unsafe { sys::result_write(bytes.as_ptr(), bytes.len()) }
}

fn report_panic(payload: &(dyn std::any::Any + Send), location: Option<&std::panic::Location<'_>>) {
    let message = match (payload.downcast_ref::<&str>(), payload.downcast_ref::<String>()) {
        (Some(s), _) => s,
        (_, Some(s)) => s.as_str(),
        _ => "panic with a non-string payload",
    };
    let (file, line) = location.map(|l| (l.file(), l.line())).unwrap_or(("", 0));
    unsafe { sys::panic(message.as_ptr(), message.len(), file.as_ptr(), file.len(), line) }
}

struct HostLogger;

impl log::Log for HostLogger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let message = record.args().to_string();
        let target = record.target();
        let file = record.file().unwrap_or("");
        unsafe {
            sys::console_log(
                record.level() as u32,
                target.as_ptr(),
                target.len(),
                file.as_ptr(),
                file.len(),
                record.line().unwrap_or(0),
                message.as_ptr(),
                message.len(),
            )
        }
    }

    fn flush(&self) {}
}
