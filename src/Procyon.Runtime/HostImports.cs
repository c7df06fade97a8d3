using System.Text;
using Procyon.Storage.Tables;
using Wasmtime;

namespace Procyon.Runtime;

/// <summary>
/// The <c>procyon</c> import module: each import moves bytes between guest memory and the
/// call in progress. Guest pointers and lengths are checked before use.
/// </summary>
internal static class HostImports
{
    public const string Module = "procyon";

    /// <summary>The longest log line, log target, file name or panic message kept, in bytes; the rest is cut.</summary>
    private const int MaxMessageBytes = 4096;


    /// <summary>Imports that wait (for a timer, Postgres or a web server): Asyncify instruments the module to suspend in them.</summary>
    public static IReadOnlyList<string> Suspending { get; } =
    [
        "sleep_until", "table_insert", "table_scan", "table_iter", "table_next", "table_count", "table_find", "table_delete_by", "table_update_by",
        "table_delete_row", "table_delete_range", "tx_begin", "tx_commit", "tx_rollback", "http_request",
    ];

    public static IReadOnlySet<string> Names { get; } = new HashSet<string>(
        ["console_log", "panic", "args_read", "result_write", "caller_identity", "database_identity", "connection_id", "random_seed", "uuid_v7_clock", "buffer_read", "buffer_len", "table_close", .. Suspending],
        StringComparer.Ordinal);


    public static void Define(Linker linker)
    {
        linker.DefineFunction(Module, "console_log",
            (Caller caller, int level, int target, int targetLen, int file, int fileLen, int line, int message, int messageLen) =>
            {
                var instance = Instance(caller);
                instance.Log(new ModuleLogRecord(
                    DateTimeOffset.UtcNow,
                    ModuleAbi.LogLevels[Math.Clamp(level - 1, 0, ModuleAbi.LogLevels.Count - 1)],
                    ReadText(caller, target, targetLen),
                    ReadText(caller, file, fileLen),
                    (uint)line,
                    ReadText(caller, message, messageLen)));
            });
        linker.DefineFunction(Module, "panic", (Caller caller, int message, int messageLen, int file, int fileLen, int line) =>
        {
            var location = ReadText(caller, file, fileLen);
            var text = location.Length == 0
                ? ReadText(caller, message, messageLen)
                : $"panicked at {location}:{(uint)line}: {ReadText(caller, message, messageLen)}";
            Instance(caller).Frame.Panic = text;
        });
        linker.DefineFunction(Module, "args_read", (Caller caller, int destination) =>
        {
            var arguments = Instance(caller).Frame.Arguments.Span;
            arguments.CopyTo(Guest(caller, destination, arguments.Length));
        });
        linker.DefineFunction(Module, "result_write", (Caller caller, int source, int length) =>
        {
            Instance(caller).Frame.Result = Guest(caller, source, length).ToArray();
        });
        linker.DefineFunction(Module, "caller_identity", (Caller caller, int destination) =>
        {
            Instance(caller).Frame.Caller.Bytes.CopyTo(Guest(caller, destination, Identity.Length));
        });
        linker.DefineFunction(Module, "database_identity", (Caller caller, int destination) =>
        {
            CallDispatcher.ModuleIdentity(Instance(caller).Database).Bytes.CopyTo(Guest(caller, destination, Identity.Length));
        });
        linker.DefineFunction(Module, "connection_id", (Caller caller, int destination) =>
        {
            if (Instance(caller).Frame.Context.ConnectionId is not { } connection)
            {
                return 0;
            }
            System.Buffers.Binary.BinaryPrimitives.WriteUInt128LittleEndian(Guest(caller, destination, 16), connection);
            return 1;
        });
        linker.DefineFunction(Module, "random_seed", (Caller caller, int destination) =>
        {
            System.Security.Cryptography.RandomNumberGenerator.Fill(Guest(caller, destination, 32));
        });
        linker.DefineFunction(Module, "uuid_v7_clock", (Caller caller) => unchecked((long)Instance(caller).UuidClock.Next()));
        linker.DefineFunction(Module, "sleep_until", (Caller caller, long targetMicros) => Instance(caller).SleepUntil(targetMicros));
        linker.DefineFunction(Module, "buffer_read", (Caller caller, int destination) =>
        {
            var buffer = Instance(caller).Frame.Buffer;
            buffer.CopyTo(Guest(caller, destination, buffer.Length));
        });
        linker.DefineFunction(Module, "buffer_len", (Caller caller) => Instance(caller).Frame.Buffer.Length);
        DefineTables(linker);
        DefineTransactions(linker);
        linker.DefineFunction(Module, "http_request", (Caller caller, int request, int requestLen, int body, int bodyLen) =>
        {
            var instance = Instance(caller);
            instance.OutsideTransaction("http_request", "while it waits for the response; send requests from a procedure, outside with_tx");
            // The request is read as it starts; when the stack rewinds into the import, its response is ready.
            var sending = instance.Frame.Resumed is null ? SendHttp(caller, instance, request, requestLen, body, bodyLen) : null;
            return instance.Suspend(frame => Reply(frame, sending!));
        });
    }

    /// <summary>Starts a module's HTTP request, refusing one too large (<see cref="Outbound.HttpOptions.MaxRequestBytes"/>) before it is copied.</summary>
    private static Task<(long Result, byte[] Buffer)> SendHttp(Caller caller, ModuleInstance instance, int request, int requestLen, int body, int bodyLen)
    {
        var context = instance.Frame.Context;
        var http = context.Http ?? throw new GuestFaultException("http_request is for procedures only");
        if ((uint)requestLen > Outbound.OutboundHttp.MaxHeadBytes)
        {
            return Task.FromResult(Outbound.OutboundHttp.Failure(ModuleAbi.HttpTooLarge, $"the request's method, URI and headers take {(uint)requestLen} bytes, more than {Outbound.OutboundHttp.MaxHeadBytes}"));
        }
        if ((uint)bodyLen > (uint)http.Options.MaxRequestBytes)
        {
            return Task.FromResult(Outbound.OutboundHttp.Failure(ModuleAbi.HttpTooLarge, $"the request's body of {(uint)bodyLen} bytes is larger than Procyon:Http:MaxRequestBytes ({http.Options.MaxRequestBytes})"));
        }
        return http.SendAsync(instance.Database, Guest(caller, request, requestLen).ToArray(), Guest(caller, body, bodyLen).ToArray(), context.CancellationToken);
    }

    /// <summary>Puts an operation's reply in the buffer and returns its result to the module.</summary>
    private static async Task<long> Reply(CallFrame frame, Task<(long Result, byte[] Buffer)> operation)
    {
        var (result, buffer) = await operation;
        frame.Buffer = buffer;
        return result;
    }

    private static void DefineTables(Linker linker)
    {
        linker.DefineFunction(Module, "table_insert", (Caller caller, int table, int tableLen, int row, int rowLen) =>
        {
            var bytes = Guest(caller, row, rowLen).ToArray();
            return TableCall(caller, "table_insert", table, tableLen, async (tx, schema, ct) =>
            {
                try
                {
                    var inserted = await tx.InsertAsync(schema, bytes, ct);
                    return (inserted.Length, inserted);
                }
                catch (UniqueViolationException e)
                {
                    return (ModuleAbi.TableUniqueViolation, Encoding.UTF8.GetBytes(e.Message));
                }
            });
        });
        // Modules built before iter() streamed read whole tables with table_scan; they still run.
        linker.DefineFunction(Module, "table_scan", (Caller caller, int table, int tableLen) =>
            TableCall(caller, "table_scan", table, tableLen, async (tx, schema, ct) =>
            {
                var rows = await tx.ScanAsync(schema, ct);
                return (rows.Length, rows);
            }));
        linker.DefineFunction(Module, "table_iter", (Caller caller, int table, int tableLen, int index, int bounds, int boundsLen) =>
        {
            var bytes = Guest(caller, bounds, boundsLen).ToArray();
            return TableCall(caller, "table_iter", table, tableLen, async (tx, schema, ct) =>
            {
                var chunk = await tx.OpenCursorAsync(schema, index == ModuleAbi.ScanWholeTable ? null : Index(schema, index), bytes, ct);
                return (chunk.Length, chunk);
            });
        });
        linker.DefineFunction(Module, "table_next", (Caller caller, int cursor) => Instance(caller).Suspend(async frame =>
        {
            frame.Buffer = await frame.Context.Transactions.RunAsync("(an iterator's)", async (tx, ct) =>
            {
                using var span = tx.CursorTable(cursor) is { } table ? ProcyonTelemetry.StartTableCall("table_next", table.Database, table.Name) : null;
                return await tx.NextAsync(cursor, ct);
            });
            return frame.Buffer.Length;
        }));
        linker.DefineFunction(Module, "table_close", (Caller caller, int cursor) => Instance(caller).Frame.Context.Transaction?.CloseCursor(cursor));
        linker.DefineFunction(Module, "table_delete_range", (Caller caller, int table, int tableLen, int index, int bounds, int boundsLen) =>
        {
            var bytes = Guest(caller, bounds, boundsLen).ToArray();
            return TableCall(caller, "table_delete_range", table, tableLen, async (tx, schema, ct) => (await tx.DeleteRangeAsync(Index(schema, index), bytes, ct), []));
        });
        linker.DefineFunction(Module, "table_count", (Caller caller, int table, int tableLen) =>
            TableCall(caller, "table_count", table, tableLen, async (tx, schema, ct) => (await tx.CountAsync(schema, ct), [])));
        linker.DefineFunction(Module, "table_find", (Caller caller, int table, int tableLen, int column, int key, int keyLen) =>
        {
            var bytes = Guest(caller, key, keyLen).ToArray();
            return TableCall(caller, "table_find", table, tableLen, async (tx, schema, ct) =>
                await tx.FindAsync(schema, Column(schema, column), bytes, ct) is { } row ? (row.Length, row) : (ModuleAbi.TableNotFound, []));
        });
        linker.DefineFunction(Module, "table_delete_by", (Caller caller, int table, int tableLen, int column, int key, int keyLen) =>
        {
            var bytes = Guest(caller, key, keyLen).ToArray();
            return TableCall(caller, "table_delete_by", table, tableLen, async (tx, schema, ct) => (await tx.DeleteByAsync(schema, Column(schema, column), bytes, ct), []));
        });
        linker.DefineFunction(Module, "table_update_by", (Caller caller, int table, int tableLen, int column, int row, int rowLen) =>
        {
            var bytes = Guest(caller, row, rowLen).ToArray();
            return TableCall(caller, "table_update_by", table, tableLen, async (tx, schema, ct) =>
            {
                try
                {
                    return await tx.UpdateByAsync(schema, Column(schema, column), bytes, ct) is { } updated ? (updated.Length, updated) : (ModuleAbi.TableNotFound, []);
                }
                catch (UniqueViolationException e)
                {
                    return (ModuleAbi.TableUniqueViolation, Encoding.UTF8.GetBytes(e.Message));
                }
            });
        });
        linker.DefineFunction(Module, "table_delete_row", (Caller caller, int table, int tableLen, int row, int rowLen) =>
        {
            var bytes = Guest(caller, row, rowLen).ToArray();
            return TableCall(caller, "table_delete_row", table, tableLen, async (tx, schema, ct) => (await tx.DeleteRowAsync(schema, bytes, ct), []));
        });
    }

    private static void DefineTransactions(Linker linker)
    {
        linker.DefineFunction(Module, "tx_begin", (Caller caller) => Instance(caller).Suspend(frame => frame.Context.Transactions.BeginByModuleAsync()));
        linker.DefineFunction(Module, "tx_commit", (Caller caller) => Instance(caller).Suspend(frame => frame.Context.Transactions.EndByModuleAsync(commit: true)));
        linker.DefineFunction(Module, "tx_rollback", (Caller caller) => Instance(caller).Suspend(frame => frame.Context.Transactions.EndByModuleAsync(commit: false)));
    }

    /// <summary>
    /// A table operation (the host import <paramref name="import"/>) in the call's transaction, in a
    /// span of its own when someone listens. Its reply goes to the buffer; its result to the
    /// module. When Postgres cannot serialize the transaction here, in the middle of the closure,
    /// the module must not go on with made-up answers: the failure ends the call (a reducer is run
    /// again from the start; a procedure, which may have slept or committed before, fails with 503).
    /// </summary>
    private static long TableCall(
        Caller caller,
        string import,
        int table,
        int tableLen,
        Func<DatabaseTransaction, TableSchema, CancellationToken, Task<(long Result, byte[] Buffer)>> operation)
    {
        var name = ReadText(caller, table, tableLen);
        return Instance(caller).Suspend(async frame =>
        {
            var context = frame.Context;
            var schema = context.Tables.GetValueOrDefault(name) ?? throw new GuestFaultException($"the module has no table named '{name}'");
            using var span = ProcyonTelemetry.StartTableCall(import, schema.Database, name);
            var (result, buffer) = await context.Transactions.RunAsync(name, (transaction, token) => operation(transaction, schema, token));
            frame.Buffer = buffer;
            return result;
        });
    }

    private static int Column(TableSchema schema, int column) =>
        column >= 0 && column < schema.Columns.Count ? column : throw new GuestFaultException($"table {schema.Name} has no column {column}");

    private static TableIndex Index(TableSchema schema, int index) =>
        index >= 0 && index < schema.Indexes.Count ? schema.Indexes[index] : throw new GuestFaultException($"table {schema.Name} has no index {index}");

    private static ModuleInstance Instance(Caller caller) => (ModuleInstance)caller.GetData()!;

    private static Span<byte> Guest(Caller caller, int pointer, int length)
    {
        var memory = caller.GetMemory("memory") ?? throw new GuestFaultException("the module exports no memory named 'memory'");
        var (start, size, available) = ((uint)pointer, (uint)length, memory.GetLength());
        if (start + (ulong)size > (ulong)available)
        {
            throw new GuestFaultException($"the module passed bytes [{start}, {start + (ulong)size}) outside its {available}-byte memory");
        }
        return memory.GetSpan(start, (int)size);
    }

    private static string ReadText(Caller caller, int pointer, int length)
    {
        var bytes = Guest(caller, pointer, length);
        return Encoding.UTF8.GetString(bytes[..Math.Min(bytes.Length, MaxMessageBytes)]);
    }
}

/// <summary>The module broke the ABI (a bad pointer, say); the call fails and the instance is dropped.</summary>
internal sealed class GuestFaultException(string message) : Exception(message);
