using Wasmtime;

namespace Procyon.Runtime;

/// <summary>What one run of a function on an instance came to.</summary>
internal readonly record struct InstanceOutcome(CallFailure Failure, byte[] Output, string? Error)
{
    public static InstanceOutcome Failed(CallFailure failure, string error) => new(failure, [], error);
}

/// <summary>The state of the call an instance is running, read and written by the host imports.</summary>
internal sealed class CallFrame(ReadOnlyMemory<byte> arguments, Identity caller)
{
    public ReadOnlyMemory<byte> Arguments { get; } = arguments;

    public Identity Caller { get; } = caller;

    public byte[] Result { get; set; } = [];

    public string? Panic { get; set; }

    /// <summary>Set while the wasm stack unwinds for a sleep.</summary>
    public long? SleepTarget { get; set; }

    /// <summary>Set while the wasm stack rewinds after a sleep: the time the call woke.</summary>
    public long? WokeAt { get; set; }
}

/// <summary>
/// One Wasmtime store and instance of a module, running one call at a time. Sleeping uses the
/// Asyncify exports <c>wasm-opt</c> added at publish time: <c>sleep_until</c> unwinds the wasm
/// stack into the module's buffer and returns to the host, which awaits a timer (no thread is
/// held) and then rewinds the stack back into <c>sleep_until</c>.
/// </summary>
internal sealed class ModuleInstance : IDisposable
{
    private const int StatusOk = 0;
    private const int StatusBadArguments = 2;
    private const int StatusNoSuchFunction = 3;

    private readonly WasmEngine _engine;
    private readonly Store _store;
    private readonly Func<int, long, int, int> _call;
    private readonly Action<int> _startUnwind;
    private readonly Action _stopUnwind;
    private readonly Action<int> _startRewind;
    private readonly Action _stopRewind;
    private readonly Action _describe;
    private readonly Memory _memory;
    private readonly int _asyncifyData;
    private CallFrame? _frame;

    /// <summary>Instantiates the module and runs its <c>__procyon_preinit__*</c> exports in name order.</summary>
    public ModuleInstance(WasmEngine engine, Module module, IReadOnlyList<string> preinits, string database, ModuleLogs logs)
    {
        _engine = engine;
        Database = database;
        Logs = logs;
        _store = new Store(engine.Engine, this);
        try
        {
            _store.SetLimits(memorySize: engine.Options.MaxMemoryBytes, tableElements: 100_000, instances: 1, tables: 4, memories: 1);
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
            _frame = new CallFrame(ReadOnlyMemory<byte>.Empty, Identity.Anonymous);
            foreach (var preinit in preinits)
            {
                (instance.GetAction(preinit) ?? throw Missing(preinit, "()"))();
            }
            _asyncifyData = asyncifyData();
        }
        catch
        {
            _store.Dispose();
            throw;
        }
    }

    public string Database { get; }

    public ModuleLogs Logs { get; }

    /// <summary>True once a call trapped or was abandoned: the instance must not be reused.</summary>
    public bool Poisoned { get; private set; }

    public CallFrame Frame => _frame ?? throw new GuestFaultException("the module called the host outside of a call");

    /// <summary>Runs the module's description export and returns the bytes it wrote.</summary>
    public byte[] ReadDescription()
    {
        _frame = new CallFrame(ReadOnlyMemory<byte>.Empty, Identity.Anonymous);
        _store.SetEpochDeadline(_engine.DeadlineTicks);
        _describe();
        return _frame.Result;
    }

    public async Task<InstanceOutcome> RunAsync(uint functionId, ReadOnlyMemory<byte> arguments, Identity caller, long timestampMicros, CancellationToken cancellationToken)
    {
        var frame = _frame = new CallFrame(arguments, caller);
        try
        {
            _store.SetEpochDeadline(_engine.DeadlineTicks);
            while (true)
            {
                var status = _call((int)functionId, timestampMicros, arguments.Length);
                if (frame.SleepTarget is not { } target)
                {
                    return status switch
                    {
                        StatusOk => new InstanceOutcome(CallFailure.None, frame.Result, null),
                        StatusBadArguments => InstanceOutcome.Failed(CallFailure.BadArguments, ModuleText(frame.Result)),
                        StatusNoSuchFunction => InstanceOutcome.Failed(CallFailure.UnknownFunction, ModuleText(frame.Result)),
                        _ => Poison(CallFailure.Trapped, $"the module returned unknown status {status}"),
                    };
                }
                _stopUnwind();
                frame.SleepTarget = null;
                // Timers may fire a little early; a call never wakes before its target.
                for (var remaining = target - UnixTime.NowMicros(); remaining > 0; remaining = target - UnixTime.NowMicros())
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(Math.Ceiling(remaining / 1000.0)), cancellationToken);
                }
                frame.WokeAt = UnixTime.NowMicros();
                // Time asleep does not count against the CPU deadline.
                _store.SetEpochDeadline(_engine.DeadlineTicks);
                _startRewind(_asyncifyData);
            }
        }
        catch (TrapException e) when (e.Type == TrapCode.Interrupt)
        {
            return Poison(CallFailure.Timeout, $"the call ran longer than its CPU deadline of {_engine.Options.CallTimeout.TotalMilliseconds:0} ms");
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

    /// <summary>The <c>sleep_until</c> import: starts an unwind, or finishes a rewind with the wake time.</summary>
    public long SleepUntil(long targetMicros)
    {
        var frame = Frame;
        if (frame.WokeAt is { } wokeAt)
        {
            _stopRewind();
            frame.WokeAt = null;
            return wokeAt;
        }
        var now = UnixTime.NowMicros();
        if (targetMicros <= now)
        {
            return now;
        }
        // Asyncify's buffer header is {next free byte, end}; each unwind starts at the beginning.
        _memory.WriteInt32(_asyncifyData, _asyncifyData + 8);
        frame.SleepTarget = targetMicros;
        _startUnwind(_asyncifyData);
        return 0;
    }

    public void Log(ModuleLogRecord record) => Logs.Append(Database, record);

    public void Dispose() => _store.Dispose();

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
