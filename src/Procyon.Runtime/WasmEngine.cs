using Microsoft.Extensions.Options;
using Wasmtime;

namespace Procyon.Runtime;

/// <summary>
/// The one Wasmtime engine and linker every module shares. A timer advances the engine's epoch
/// every <see cref="RuntimeOptions.EpochTick"/>; a store's deadline is that many ticks ahead.
/// </summary>
public sealed class WasmEngine : IDisposable
{
    private readonly Timer _ticker;

    public WasmEngine(IOptions<RuntimeOptions> options)
    {
        Options = options.Value;
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
        _ticker = new Timer(_ => Engine.IncrementEpoch(), null, Options.EpochTick, Options.EpochTick);
    }

    public RuntimeOptions Options { get; }

    internal Engine Engine { get; }

    internal Linker Linker { get; }

    internal ulong DeadlineTicks { get; }

    public void Dispose()
    {
        _ticker.Dispose();
        Linker.Dispose();
        Engine.Dispose();
    }
}
