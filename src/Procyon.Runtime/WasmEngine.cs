using Microsoft.Extensions.Options;
using Wasmtime;

namespace Procyon.Runtime;

/// <summary>
/// The one Wasmtime engine and linker every module shares. A timer advances the engine's epoch
/// every <see cref="RuntimeOptions.EpochTick"/>; a store's deadline is that many ticks ahead.
/// </summary>
public sealed class WasmEngine : IDisposable
{
    private readonly Thread _ticker;
    private readonly CancellationTokenSource _stopping = new();
    private readonly IDisposable _observed;

    public WasmEngine(IOptions<RuntimeOptions> options)
    {
        Options = options.Value;
        Memory = new InstanceMemory(Options);
        _observed = ProcyonTelemetry.Observe(Memory);
        using var config = new Config()
            .WithEpochInterruption(true)
            // Reserve only what an instance may use, so thousands of sleeping instances fit in the address space.
            .WithStaticMemoryMaximumSize((ulong)Options.MaxMemoryBytes)
            .WithMemoryGuardSize(64 * 1024)
            .WithMemoryReservationForGrowth(0);
        Engine = new Engine(config);
        Linker = new Linker(Engine);
        HostImports.Define(Linker);
        DeadlineTicks = (ulong)Math.Ceiling(Options.CallTimeout / Options.EpochTick);
        // A thread of its own: a pool timer would starve exactly when modules hog the pool's threads.
        _ticker = new Thread(Tick) { IsBackground = true, Name = "Procyon epoch ticker" };
        _ticker.Start();
    }

    public RuntimeOptions Options { get; }

    /// <summary>What this engine's instances hold, against the memory budget.</summary>
    public InstanceMemory Memory { get; }

    /// <summary>The UUID v7 clock of each database, shared by all its instances.</summary>
    internal UuidClocks UuidClocks { get; } = new(TimeProvider.System);

    internal Engine Engine { get; }

    internal Linker Linker { get; }

    internal ulong DeadlineTicks { get; }

    private void Tick()
    {
        while (!_stopping.Token.WaitHandle.WaitOne(Options.EpochTick))
        {
            Engine.IncrementEpoch();
        }
    }

    public void Dispose()
    {
        _observed.Dispose();
        _stopping.Cancel();
        _ticker.Join();
        _stopping.Dispose();
        Linker.Dispose();
        Engine.Dispose();
    }
}
