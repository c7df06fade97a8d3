using System.Collections.Concurrent;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Procyon.Storage;

namespace Procyon.Runtime;

/// <summary>The modules this server runs, by database name, kept in step with the catalog.</summary>
public sealed partial class ModuleRegistry(ModulePreparer preparer, ModuleStore store, ModuleLogs logs, ILogger<ModuleRegistry> logger) : IDisposable
{
    private readonly ConcurrentDictionary<string, LoadedModule> _modules = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _publishing = new(1, 1);

    public LoadedModule? Find(string database) => _modules.GetValueOrDefault(database);

    public IEnumerable<LoadedModule> All => _modules.Values.OrderBy(m => m.Database, StringComparer.Ordinal);

    /// <summary>Loads every published module from the catalog; one that no longer loads is logged and skipped.</summary>
    public async Task LoadAllAsync(CancellationToken cancellationToken)
    {
        await store.EnsureCatalogAsync(cancellationToken);
        await foreach (var stored in store.LoadAllAsync(cancellationToken))
        {
            try
            {
                Swap(preparer.Load(stored.Name, stored.Prepared, stored.Sha256, stored.UpdatedAt));
            }
            catch (ModuleRejectedException e)
            {
                LogLoadFailed(stored.Name, e.Message);
            }
        }
    }

    /// <summary>Publishes or replaces a module; returns true when the database is new.</summary>
    public async Task<bool> PublishAsync(string database, byte[] wasm, CancellationToken cancellationToken)
    {
        var prepared = await preparer.PrepareAsync(wasm, cancellationToken);
        var sha256 = Convert.ToHexStringLower(SHA256.HashData(wasm));
        await _publishing.WaitAsync(cancellationToken);
        try
        {
            var loaded = preparer.Load(database, prepared, sha256, DateTimeOffset.UtcNow);
            var created = await store.SaveAsync(new StoredModule(database, wasm, prepared, sha256, loaded.UpdatedAt), cancellationToken);
            Swap(loaded);
            LogPublished(database, sha256, loaded.Description.Functions.Count);
            return created;
        }
        finally
        {
            _publishing.Release();
        }
    }

    public async Task<bool> DeleteAsync(string database, CancellationToken cancellationToken)
    {
        await _publishing.WaitAsync(cancellationToken);
        try
        {
            var deleted = await store.DeleteAsync(database, cancellationToken);
            if (_modules.TryRemove(database, out var old))
            {
                old.Retire();
            }
            logs.Clear(database);
            return deleted;
        }
        finally
        {
            _publishing.Release();
        }
    }

    /// <summary>Frees every idle instance before the engine goes away.</summary>
    public void Dispose()
    {
        foreach (var module in _modules.Values)
        {
            module.Retire();
        }
        _modules.Clear();
        _publishing.Dispose();
    }

    private void Swap(LoadedModule loaded)
    {
        LoadedModule? old = null;
        _modules.AddOrUpdate(loaded.Database, loaded, (_, existing) =>
        {
            old = existing;
            return loaded;
        });
        old?.Retire();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Published database {Database} (wasm sha256 {Sha256}, {Functions} functions)")]
    private partial void LogPublished(string database, string sha256, int functions);

    [LoggerMessage(Level = LogLevel.Error, Message = "Database {Database} is in the catalog but does not load: {Reason}")]
    private partial void LogLoadFailed(string database, string reason);
}
