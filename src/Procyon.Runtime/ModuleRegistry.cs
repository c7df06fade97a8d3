using System.Collections.Concurrent;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Procyon.Storage;
using Procyon.Storage.Tables;

namespace Procyon.Runtime;

/// <summary>The modules this server runs, by database name, kept in step with the catalog.</summary>
/// <param name="Created">The database name was new.</param>
/// <param name="TablesCreated">Its tables were created from nothing: time for the init reducer.</param>
public sealed record PublishOutcome(bool Created, bool TablesCreated);

public sealed partial class ModuleRegistry(ModulePreparer preparer, ModuleStore store, DatabaseSchemas schemas, ModuleLogs logs, ILogger<ModuleRegistry> logger) : IDisposable
{
    private readonly ConcurrentDictionary<string, LoadedModule> _modules = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _publishing = new(1, 1);

    public LoadedModule? Find(string database) => _modules.GetValueOrDefault(database);

    /// <summary>Raised after a module is loaded, replaced or dropped here.</summary>
    public event Action? Changed;

    public IEnumerable<LoadedModule> All => _modules.Values.OrderBy(m => m.Database, StringComparer.Ordinal);

    /// <summary>Loads every published module from the catalog; one that no longer loads is logged and skipped.</summary>
    public async Task LoadAllAsync(CancellationToken cancellationToken)
    {
        await store.EnsureCatalogAsync(cancellationToken);
        await foreach (var stored in store.LoadAllAsync(cancellationToken))
        {
            Load(stored);
        }
    }

    /// <summary>
    /// Publishes or replaces a module and creates its new tables. Changed or removed tables are
    /// refused (<see cref="SchemaConflictException"/>) unless <paramref name="clear"/> drops the old data.
    /// </summary>
    public async Task<PublishOutcome> PublishAsync(string database, byte[] wasm, Identity owner, bool clear, CancellationToken cancellationToken)
    {
        await RequireOwnerAsync(database, owner, cancellationToken);
        var prepared = await preparer.PrepareAsync(wasm, cancellationToken);
        var sha256 = Convert.ToHexStringLower(SHA256.HashData(wasm));
        await _publishing.WaitAsync(cancellationToken);
        try
        {
            var loaded = preparer.Load(database, prepared, sha256, DateTimeOffset.UtcNow);
            var tablesCreated = await schemas.EnsureAsync(database, loaded.Tables.Values.ToList(), loaded.Description.Typespace, clear, cancellationToken);
            var created = await store.SaveAsync(new StoredModule(database, wasm, prepared, sha256, loaded.UpdatedAt), owner.ToString(), cancellationToken);
            Swap(loaded);
            await store.NotifyChangedAsync(database, cancellationToken);
            LogPublished(database, sha256, loaded.Description.Functions.Count);
            return new PublishOutcome(created, tablesCreated);
        }
        finally
        {
            _publishing.Release();
        }
    }

    public async Task<bool> DeleteAsync(string database, Identity caller, CancellationToken cancellationToken)
    {
        await RequireOwnerAsync(database, caller, cancellationToken);
        await _publishing.WaitAsync(cancellationToken);
        try
        {
            var deleted = await store.DeleteAsync(database, cancellationToken);
            await schemas.DropAsync(database, cancellationToken);
            if (_modules.TryRemove(database, out var old))
            {
                old.Retire();
            }
            logs.Clear(database);
            await store.NotifyChangedAsync(database, cancellationToken);
            return deleted;
        }
        finally
        {
            _publishing.Release();
        }
    }

    /// <summary>
    /// Brings one database in line with the catalog after another replica published or deleted
    /// it: loads the stored module when it differs from the one running here, or drops it.
    /// </summary>
    public async Task RefreshAsync(string database, CancellationToken cancellationToken)
    {
        await _publishing.WaitAsync(cancellationToken);
        try
        {
            var stored = await store.LoadAsync(database, cancellationToken);
            if (stored is null)
            {
                if (_modules.TryRemove(database, out var old))
                {
                    old.Retire();
                    Changed?.Invoke();
                    LogRefreshed(database, "deleted");
                }
                return;
            }
            if (Find(database)?.Sha256 != stored.Sha256 && Load(stored))
            {
                LogRefreshed(database, $"sha256 {stored.Sha256}");
            }
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

    /// <summary>The first identity to publish a database owns it; nobody else may replace or delete it.</summary>
    private async Task RequireOwnerAsync(string database, Identity caller, CancellationToken cancellationToken)
    {
        if (await store.OwnerAsync(database, cancellationToken) is { } owner && owner != caller.ToString())
        {
            throw new NotOwnerException(database);
        }
    }

    /// <summary>Runs a module from the catalog; one that no longer loads is logged and skipped.</summary>
    private bool Load(StoredModule stored)
    {
        try
        {
            Swap(preparer.Load(stored.Name, stored.Prepared, stored.Sha256, stored.UpdatedAt));
            return true;
        }
        catch (ModuleRejectedException e)
        {
            LogLoadFailed(stored.Name, e.Message);
            return false;
        }
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
        Changed?.Invoke();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Published database {Database} (wasm sha256 {Sha256}, {Functions} functions)")]
    private partial void LogPublished(string database, string sha256, int functions);

    [LoggerMessage(Level = LogLevel.Information, Message = "Database {Database} changed on another replica: {Change}")]
    private partial void LogRefreshed(string database, string change);

    [LoggerMessage(Level = LogLevel.Error, Message = "Database {Database} is in the catalog but does not load: {Reason}")]
    private partial void LogLoadFailed(string database, string reason);
}
