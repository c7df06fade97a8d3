using System.Collections.Concurrent;
using System.Threading.Channels;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;
using Procyon.Storage;

namespace Procyon.Runtime;

/// <summary>
/// Replaces the quick rewrite a publish answers with (<see cref="RuntimeOptions.OptimizeAfterPublish"/>)
/// by the optimized one, one module at a time and taking its turn with publishes: writes it to the
/// catalog for every database running those bytes, which tells every replica, and swaps it in
/// here. Calls in flight finish on the quick one. On start, it picks up what a stopped server left.
/// </summary>
public sealed partial class ModuleOptimizer(
    ModulePreparer preparer,
    PrepareLimiter prepareLimiter,
    ModuleStore store,
    ModuleRegistry registry,
    ILogger<ModuleOptimizer> logger) : BackgroundService
{
    private static readonly TimeSpan BusyDelay = TimeSpan.FromSeconds(1);

    private readonly Channel<string> _queue = Channel.CreateUnbounded<string>(new UnboundedChannelOptions { SingleReader = true });

    /// <summary>Databases queued and not yet taken, so a database is queued once however often it is asked for.</summary>
    private readonly ConcurrentDictionary<string, byte> _queued = new(StringComparer.Ordinal);

    /// <summary>Queues a database whose module runs the quick rewrite.</summary>
    public void Enqueue(string database)
    {
        if (_queued.TryAdd(database, 0))
        {
            _queue.Writer.TryWrite(database);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        foreach (var module in registry.All.Where(m => !m.Optimized))
        {
            Enqueue(module.Database);
        }
        await foreach (var database in _queue.Reader.ReadAllAsync(stoppingToken))
        {
            _queued.TryRemove(database, out _);
            try
            {
                await OptimizeAsync(database, stoppingToken);
            }
            catch (Exception e) when (e is ModuleRejectedException or InvalidOperationException or NpgsqlException)
            {
                // The quick rewrite keeps serving; the next start tries again.
                LogFailed(database, e.Message);
            }
        }
    }

    private async Task OptimizeAsync(string database, CancellationToken cancellationToken)
    {
        if (await store.LoadAsync(database, cancellationToken) is not { Optimized: false } stored)
        {
            return;
        }
        // Another database of the same bytes may have been optimized meanwhile: no need to run wasm-opt again.
        var known = await store.FindRewrittenAsync(stored.Sha256, stored.Wasm, cancellationToken);
        byte[] optimized;
        if (known is { Optimized: true })
        {
            optimized = known.Value.Prepared;
        }
        else
        {
            using var turn = await WaitTurnAsync(cancellationToken);
            optimized = await preparer.PrepareAsync(stored.Wasm, rewritten: null, optimize: true, cancellationToken);
            // Proven to load before the catalog holds it: a start must never find a module that does not.
            // Its compiled code stays in the cache for the swap.
            preparer.Load(database, optimized, optimized: true, stored.Sha256, owner: null, stored.UpdatedAt).Retire();
        }
        foreach (var changed in await store.SaveOptimizedAsync(stored.Sha256, stored.Wasm, optimized, cancellationToken))
        {
            await registry.RefreshAsync(changed, cancellationToken);
        }
    }

    /// <summary>A turn at preparing; while publishes fill the queue, it waits rather than being refused.</summary>
    private async Task<IDisposable> WaitTurnAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            try
            {
                return await prepareLimiter.WaitTurnAsync(cancellationToken);
            }
            catch (OverloadedException)
            {
                await Task.Delay(BusyDelay, cancellationToken);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not optimize the module of database {Database}; it keeps running its quick rewrite: {Reason}")]
    private partial void LogFailed(string database, string reason);
}
