using Wasmtime;

namespace Procyon.Runtime;

/// <summary>What one run of a function on an instance came to.</summary>
internal readonly record struct InstanceOutcome(CallFailure Failure, byte[] Output, string? Error)
{
    public static InstanceOutcome Failed(CallFailure failure, string error) => new(failure, [], error);
}

/// <summary>The state of the call an instance is running, read and written by the host imports.</summary>
internal sealed class CallFrame(ReadOnlyMemory<byte> arguments, Identity caller, CallContext context)
{
    public ReadOnlyMemory<byte> Arguments { get; } = arguments;

    public Identity Caller { get; } = caller;

    public CallContext Context { get; } = context;

    public byte[] Result { get; set; } = [];

    public string? Panic { get; set; }

    /// <summary>The reply to the last table call, which the module copies out with <c>buffer_read</c>.</summary>
    public byte[] Buffer { get; set; } = [];

    /// <summary>Set while the wasm stack unwinds: the host operation the call waits for.</summary>
    public Task<long>? Pending { get; set; }

    /// <summary>Set while the wasm stack rewinds: what that operation returned.</summary>
    public long? Resumed { get; set; }

    /// <summary>Set while the wasm stack unwinds for <c>sleep_until</c>: the time to wake, in Unix microseconds.</summary>
    public long? SleepTarget { get; set; }
}

/// <summary>What a call's host operations work with: the tables and the call's transaction (none while the module starts).</summary>
/// <param name="Durable">For a procedure call that may sleep in Postgres: its identity there.</param>
/// <param name="Http">For a procedure: what sends its HTTP requests.</param>
internal sealed record CallContext(IReadOnlyDictionary<string, Storage.Tables.TableSchema> Tables, CallTransaction? Transaction, DurableCall? Durable = null, Outbound.OutboundHttp? Http = null)
{
    public CancellationToken CancellationToken => Transaction?.CallToken ?? CancellationToken.None;

    /// <summary>The call's transaction owner; a module that is only starting has none.</summary>
    public CallTransaction Transactions => Transaction ?? throw new GuestFaultException("no transactions while the module starts");

    /// <summary>The hub connection the call came over (the <c>connection_id</c> import), if any.</summary>
    public UInt128? ConnectionId { get; init; }
}

/// <summary>
/// One Wasmtime store and instance of a module, running one call at a time. Sleeping uses the
/// Asyncify exports <c>wasm-opt</c> added at publish time: <c>sleep_until</c> unwinds the wasm
/// stack into the module's buffer and returns to the host, which awaits a timer (no thread is
/// held) and then rewinds the stack back into <c>sleep_until</c>.
/// </summary>
internal sealed class ModuleInstance : IDisposable
{
    /// <summary>The context of the calls an instance makes outside a real call (pre-init, describe).</summary>
    private static readonly CallContext Idle = new(new Dictionary<string, Storage.Tables.TableSchema>(), Transaction: null);

    private readonly WasmEngine _engine;
    private readonly Store _store;
    private readonly Func<int, long, int, int> _call;
    private readonly Action<int> _startUnwind;
    private readonly Action _stopUnwind;
    private readonly Action<int> _startRewind;
    private readonly Action _stopRewind;
    private readonly Action _describe;
    private readonly Memory _memory;
    private readonly ModuleLogs _logs;
    private readonly int _asyncifyData;
    private readonly Global[] _globals;
    private readonly SemaphoreSlim _running;
    private CallFrame? _frame;

    /// <summary>Whether the running wasm may grow less than its own limit allows, for want of the budget's room.</summary>
    private bool _budgetShort;

    /// <summary>Instantiates the module and runs its <c>__procyon_preinit__*</c> exports in name order.</summary>
    /// <param name="running">Turns to run wasm, shared by the instances of one database.</param>
    /// <param name="startBytes">The memory the instance may start with: its initial memory and what its preinit exports may grow.</param>
    /// <param name="budgeted">
    /// Whether those bytes come from the server's budget; throws <see cref="Storage.OverloadedException"/>
    /// when the budget has not that much left.
    /// </param>
    public ModuleInstance(WasmEngine engine, Module module, IReadOnlyList<string> preinits, string database, ModuleLogs logs, SemaphoreSlim running, long startBytes, bool budgeted)
    {
        _engine = engine;
        Database = database;
        UuidClock = engine.UuidClocks.For(database);
        _logs = logs;
        _running = running;
        _store = new Store(engine.Engine, this);
        var grant = budgeted ? engine.Memory.Grant(startBytes) : 0;
        try
        {
            LimitMemory(budgeted ? grant : startBytes);
            _store.SetEpochDeadline(engine.DeadlineTicks);
            var instance = engine.Linker.Instantiate(_store, module);
            _memory = instance.GetMemory("memory") ?? throw new ModuleRejectedException("the module exports no memory named 'memory'");
            _call = instance.GetFunction<int, long, int, int>(ModuleAbi.Call) ?? throw Missing(ModuleAbi.Call, "(i32, i64, i32) -> i32");
            _startUnwind = instance.GetAction<int>("asyncify_start_unwind") ?? throw Missing("asyncify_start_unwind", "(i32)");
            _stopUnwind = instance.GetAction("asyncify_stop_unwind") ?? throw Missing("asyncify_stop_unwind", "()");
            _startRewind = instance.GetAction<int>("asyncify_start_rewind") ?? throw Missing("asyncify_start_rewind", "(i32)");
            _stopRewind = instance.GetAction("asyncify_stop_rewind") ?? throw Missing("asyncify_stop_rewind", "()");
            var asyncifyData = instance.GetFunction<int>(ModuleAbi.AsyncifyData) ?? throw Missing(ModuleAbi.AsyncifyData, "() -> i32");
            _describe = instance.GetAction(ModuleAbi.Describe) ?? throw Missing(ModuleAbi.Describe, "()");
            _globals = module.Exports
                .OfType<GlobalExport>()
                .Where(e => e.Mutability == Mutability.Mutable && e.Name.StartsWith(WasmBinary.GlobalExportPrefix, StringComparison.Ordinal))
                .Select(e => e.Name)
                .Order(StringComparer.Ordinal)
                .Select(name => instance.GetGlobal(name)!)
                .ToArray();
            _frame = new CallFrame(ReadOnlyMemory<byte>.Empty, Identity.Anonymous, Idle);
            foreach (var preinit in preinits)
            {
                (instance.GetAction(preinit) ?? throw Missing(preinit, "()"))();
            }
            _asyncifyData = asyncifyData();
            CountMemory();
            engine.Memory.Created();
        }
        catch (WasmtimeException) when (budgeted && grant < startBytes)
        {
            _store.Dispose();
            throw new Storage.OverloadedException($"a new instance needed more memory than the server had left: {engine.Memory.Refuse(database)}");
        }
        catch
        {
            _store.Dispose();
            throw;
        }
        finally
        {
            engine.Memory.Ungrant(grant);
        }
    }

    public string Database { get; }

    /// <summary>The database's clock for <c>ctx.new_uuid_v7()</c>.</summary>
    internal UuidClock UuidClock { get; }


    /// <summary>True once a call trapped or was abandoned: the instance must not be reused.</summary>
    public bool Poisoned { get; private set; }

    public CallFrame Frame => _frame ?? throw new GuestFaultException("the module called the host outside of a call");

    /// <summary>Runs the module's description export and returns the bytes it wrote.</summary>
    public byte[] ReadDescription()
    {
        _frame = new CallFrame(ReadOnlyMemory<byte>.Empty, Identity.Anonymous, Idle);
        _store.SetEpochDeadline(_engine.DeadlineTicks);
        LimitMemory(_engine.Options.MaxMemoryBytes);
        _describe();
        CountMemory();
        return _frame.Result;
    }

    /// <summary>Whether a call suspended here can be written to Postgres: the module's globals are exported for it (modules prepared before were not).</summary>
    public bool CanSnapshot => _globals.Length > 0;

    /// <summary>The state of the call suspended here (between an unwind and its rewind).</summary>
    public byte[] Snapshot(uint functionId, ReadOnlySpan<byte> arguments, long timestampMicros) =>
        CallSnapshot.Write(_memory, _globals, functionId, timestampMicros, arguments);

    /// <summary>
    /// Puts a call's snapshot into this fresh instance: the memory (within the budget; throws
    /// <see cref="Storage.OverloadedException"/> when it has not the room) and the globals. Then
    /// <see cref="RunAsync"/> with <c>resumeWith</c> rewinds into <c>sleep_until</c>.
    /// </summary>
    public void Restore(CallSnapshot snapshot)
    {
        if (snapshot.MemoryLength > _engine.Options.MaxMemoryBytes)
        {
            throw new InvalidDataException($"the snapshot holds {snapshot.MemoryLength} bytes of memory, more than an instance may (Procyon:Runtime:MaxMemoryBytes)");
        }
        var wanted = Math.Max(0, snapshot.MemoryLength - MemoryBytes);
        var grant = _engine.Memory.Grant(wanted);
        try
        {
            if (grant < wanted)
            {
                Poisoned = true;
                throw new Storage.OverloadedException($"a durable call needed more memory than the server had left: {_engine.Memory.Refuse(Database)}");
            }
            LimitMemory(MemoryBytes + grant);
            snapshot.Apply(_memory, _globals);
            CountMemory();
        }
        finally
        {
            _engine.Memory.Ungrant(grant);
        }
    }

    /// <param name="resumeWith">For a call restored from a snapshot: what <c>sleep_until</c> returns as the stack rewinds into it.</param>
    public async Task<InstanceOutcome> RunAsync(uint functionId, ReadOnlyMemory<byte> arguments, Identity caller, long timestampMicros, CallContext context, long? resumeWith = null)
    {
        var frame = _frame = new CallFrame(arguments, caller, context) { Resumed = resumeWith };
        var turn = System.Diagnostics.Stopwatch.GetTimestamp();
        try
        {
            for (bool first = resumeWith is null, rewind = !first; ; first = false, rewind = true)
            {
                // Waiting for a turn holds no thread: a database's busy calls cannot take them all.
                // A call that has not started yet is refused when the wait is too long: nothing of it ran.
                if (!_running.Wait(0) && !await WaitTurnAsync(first ? _engine.Options.MaxTurnWait : Timeout.InfiniteTimeSpan, context.CancellationToken))
                {
                    ProcyonTelemetry.Refused(Database, ProcyonTelemetry.ShedReason.Turn);
                    return InstanceOutcome.Failed(CallFailure.Overloaded,
                        $"the database's calls had no turn to run within {_engine.Options.MaxTurnWait.TotalSeconds:0.#} s (Procyon:Runtime:MaxTurnWait): it is busy; try again shortly");
                }
                // The deadline counts from the turn: neither waiting for it nor sleeping counts against the CPU deadline.
                _store.SetEpochDeadline(_engine.DeadlineTicks);
                turn = System.Diagnostics.Stopwatch.GetTimestamp();
                var grant = GrantMemory();
                int status;
                try
                {
                    if (rewind)
                    {
                        // Wasm too (Asyncify's export): it runs in the turn, under the deadline just set.
                        _startRewind(_asyncifyData);
                    }
                    status = _call((int)functionId, timestampMicros, arguments.Length);
                }
                finally
                {
                    _running.Release();
                    CountMemory();
                    _engine.Memory.Ungrant(grant);
                }
                if (frame.Pending is not { } pending)
                {
                    return status switch
                    {
                        ModuleAbi.StatusOk => new InstanceOutcome(CallFailure.None, frame.Result, null),
                        ModuleAbi.StatusBadArguments => InstanceOutcome.Failed(CallFailure.BadArguments, ModuleText(frame.Result)),
                        ModuleAbi.StatusNoSuchFunction => InstanceOutcome.Failed(CallFailure.UnknownFunction, ModuleText(frame.Result)),
                        ModuleAbi.StatusFailed => InstanceOutcome.Failed(CallFailure.ReducerFailed, ModuleText(frame.Result)),
                        _ => Poison(CallFailure.Trapped, $"the module returned unknown status {status}"),
                    };
                }
                _stopUnwind();
                frame.Pending = null;
                // A long sleep is written to Postgres now, while the stack is unwound, and saved as the call sleeps.
                var saving = frame.SleepTarget is { } target && CanSnapshot ? context.Durable?.Sleeping(this, functionId, arguments, timestampMicros, target) : null;
                var asleep = frame.SleepTarget is null ? default : ProcyonTelemetry.Sleeping(Database, durable: saving is not null);
                frame.SleepTarget = null;
                try
                {
                    using (asleep)
                    {
                        frame.Resumed = await pending;
                    }
                    if (saving is not null && !await context.Durable!.WokeAsync(saving))
                    {
                        return Poison(CallFailure.Cancelled, "another server took this durable call over while it slept");
                    }
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    var failed = CallTransaction.Outcome(e, context.Transaction?.IsReducer ?? false);
                    return Poison(failed?.Failure ?? CallFailure.Trapped, failed?.Error ?? (e is GuestFaultException ? e.Message : $"a host operation failed: {e.Message}"));
                }
            }
        }
        catch (TrapException e) when (e.Type == TrapCode.Interrupt)
        {
            return Poison(CallFailure.Timeout,
                $"the call ran longer than its CPU deadline of {_engine.Options.CallTimeout.TotalMilliseconds:0} ms (its last turn: {System.Diagnostics.Stopwatch.GetElapsedTime(turn).TotalMilliseconds:0} ms)");
        }
        catch (TrapException e) when (_budgetShort && (frame.Panic?.StartsWith(ModuleAbi.OutOfMemory, StringComparison.Ordinal) ?? e.Type == TrapCode.Unreachable))
        {
            // An allocator aborts when memory.grow fails: here, for want of the budget's room.
            var why = frame.Panic is { } panic ? $" ({panic})" : "";
            return Poison(CallFailure.Overloaded, $"the call needed more memory than the server had left{why}: {_engine.Memory.Refuse(Database)}");
        }
        catch (WasmtimeException e)
        {
            return Poison(CallFailure.Trapped, frame.Panic ?? Describe(e));
        }
        catch (OperationCanceledException)
        {
            return Poison(CallFailure.Cancelled, "the server is shutting down");
        }
        finally
        {
            _frame = null;
        }
    }

    /// <summary>Waits for a turn to run wasm, counted as queued meanwhile; false when none came within <paramref name="timeout"/>.</summary>
    private async Task<bool> WaitTurnAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        using (ProcyonTelemetry.QueuedForTurn())
        {
            return await _running.WaitAsync(timeout, cancellationToken);
        }
    }

    /// <summary>
    /// Runs an asynchronous host operation for an import without blocking the thread: the first
    /// time, starts it and unwinds the wasm stack back to <see cref="RunAsync"/>, which awaits it;
    /// when the stack is rewound into the same import, returns the operation's result.
    /// </summary>
    public long Suspend(Func<CallFrame, Task<long>> operation)
    {
        var frame = Frame;
        if (frame.Resumed is { } result)
        {
            _stopRewind();
            frame.Resumed = null;
            return result;
        }
        frame.Pending = operation(frame);
        // Asyncify's buffer header is {next free byte, end}; each unwind starts at the beginning.
        _memory.WriteInt32(_asyncifyData, _asyncifyData + 8);
        _startUnwind(_asyncifyData);
        return 0;
    }

    /// <summary>Refuses an import that waits while a transaction is open, which it would hold for as long as it waits.</summary>
    public void OutsideTransaction(string import, string advice)
    {
        if (Frame.Context.Transaction is { } transaction && (transaction.IsReducer || transaction.IsOpen))
        {
            throw new GuestFaultException($"{import} was called inside a reducer or with_tx, where it would hold the transaction open {advice}");
        }
    }

    /// <summary>The <c>sleep_until</c> import; refused while a transaction is open, which it would hold for as long as it sleeps.</summary>
    public long SleepUntil(long targetMicros)
    {
        OutsideTransaction("sleep_until", "as long as it sleeps; sleep in a procedure, outside with_tx");
        return Frame.Resumed is null && targetMicros <= UnixTime.NowMicros()
            ? UnixTime.NowMicros()
            : Suspend(frame =>
            {
                frame.SleepTarget = targetMicros;
                return SleepAsync(targetMicros, frame.Context.CancellationToken);
            });
    }

    /// <summary>Waits until <paramref name="targetMicros"/> (never less) and returns the time of waking, in Unix microseconds.</summary>
    internal static async Task<long> SleepAsync(long targetMicros, CancellationToken cancellationToken)
    {
        // Timers may fire a little early; a call never wakes before its target.
        for (var remaining = targetMicros - UnixTime.NowMicros(); remaining > 0; remaining = targetMicros - UnixTime.NowMicros())
        {
            await Task.Delay(TimeSpan.FromMilliseconds(Math.Ceiling(remaining / 1000.0)), cancellationToken);
        }
        return UnixTime.NowMicros();
    }

    /// <summary>Appends a line to the database's logs, with the trace of the call that wrote it when it has one.</summary>
    public void Log(ModuleLogRecord record) =>
        _logs.Append(Database, System.Diagnostics.Activity.Current is { Recorded: true } activity ? record with { TraceId = activity.TraceId.ToString() } : record);

    /// <summary>Bytes of linear memory last counted against the budget.</summary>
    public long MemoryBytes { get; private set; }

    /// <summary>Set while the instance waits in its module's pool.</summary>
    public bool Parked { get; set; }

    public void Dispose()
    {
        _store.Dispose();
        _engine.Memory.Release(MemoryBytes, Parked);
    }

    /// <summary>
    /// Lets the wasm about to run grow by what the server's budget grants it, up to the instance's own
    /// limit; returns the grant, which the caller gives back once the growth is counted.
    /// </summary>
    private long GrantMemory()
    {
        var wanted = _engine.Options.MaxMemoryBytes - MemoryBytes;
        var grant = _engine.Memory.Grant(wanted);
        _budgetShort = grant < wanted;
        LimitMemory(MemoryBytes + grant);
        return grant;
    }

    private void LimitMemory(long bytes) => _store.SetLimits(memorySize: bytes, tableElements: 100_000, instances: 1, tables: 4, memories: 1);

    /// <summary>Brings the budget's count up to the memory the module has grown (or been created) to.</summary>
    private void CountMemory()
    {
        var bytes = (long)_memory.GetLength();
        _engine.Memory.Grow(bytes - MemoryBytes);
        MemoryBytes = bytes;
    }

    private InstanceOutcome Poison(CallFailure failure, string error)
    {
        Poisoned = true;
        if (failure == CallFailure.Trapped)
        {
            Log(new ModuleLogRecord(DateTimeOffset.UtcNow, "ERROR", Database, null, 0, error));
        }
        return InstanceOutcome.Failed(failure, error);
    }

    private static string Describe(WasmtimeException e) => e.InnerException is GuestFaultException fault
        ? fault.Message
        : e is TrapException trap ? $"the module trapped: {trap.Type} ({FirstLine(e.Message)})" : FirstLine(e.Message);

    private static string FirstLine(string text) => text.Split('\n', 2)[0].Trim();

    private static string ModuleText(byte[] bytes) => System.Text.Encoding.UTF8.GetString(bytes);

    private static ModuleRejectedException Missing(string export, string signature) =>
        new($"the module does not export '{export}' as a function {signature}; build it with the procyon SDK");
}
