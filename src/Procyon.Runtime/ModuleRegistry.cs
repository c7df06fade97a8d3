using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Procyon.Storage;
using Procyon.Storage.Tables;

namespace Procyon.Runtime;

/// <summary>The modules this server runs, by database name, kept in step with the catalog.</summary>
public sealed partial class ModuleRegistry(ModulePreparer preparer, CompiledModuleCache cache, ModuleStore store, ModuleLogs logs, ReaderConnections readers, WasmEngine engine, ILogger<ModuleRegistry> logger) : IDisposable
{
    private readonly ConcurrentDictionary<string, LoadedModule> _modules = new(StringComparer.Ordinal);

    /// <summary>
    /// Orders changes here: a publish's or delete's commit together with its swap, and a refresh's
    /// read of the catalog together with what it does, so an older state never replaces a newer one.
    /// </summary>
    private readonly SemaphoreSlim _changing = new(1, 1);

    public LoadedModule? Find(string database) => _modules.GetValueOrDefault(database);

    /// <summary>Raised after a module is loaded, replaced or dropped here.</summary>
    public event Action? Changed;

    public IEnumerable<LoadedModule> All => _modules.Values.OrderBy(m => m.Database, StringComparer.Ordinal);

    /// <summary>Loads every published module from the catalog; one that no longer loads is logged and skipped.</summary>
    public async Task LoadAllAsync(CancellationToken cancellationToken)
    {
        await store.EnsureCatalogAsync(cancellationToken);
        await cache.OpenAsync(store, cancellationToken);
        await foreach (var stored in store.LoadAllAsync(cancellationToken))
        {
            Load(stored);
        }
        // Only now: an entry of a module not loaded yet would look unused.
        PruneCache();
    }

    /// <summary>
    /// Commits a publish (<paramref name="replacement"/> is the new module) or a delete (null) and
    /// makes it take effect here at once. Other replicas follow through the change notification.
    /// </summary>
    internal async Task CommitAsync(DatabaseTransaction transaction, string database, LoadedModule? replacement)
    {
        // Not cancellable: once the commit is sent, this server must act on its outcome.
        await _changing.WaitAsync(CancellationToken.None);
        try
        {
            await transaction.CommitAsync(CancellationToken.None);
            if (replacement is null)
            {
                Remove(database);
            }
            else
            {
                Swap(replacement);
            }
            PruneCache();
        }
        finally
        {
            _changing.Release();
        }
    }

    /// <summary>
    /// Brings one database in line with the catalog after another replica published or deleted
    /// it: loads the stored module when it differs from the one running here, or drops it.
    /// </summary>
    public async Task RefreshAsync(string database, CancellationToken cancellationToken)
    {
        await _changing.WaitAsync(cancellationToken);
        try
        {
            await RefreshUnlockedAsync(database, cancellationToken);
            PruneCache();
        }
        finally
        {
            _changing.Release();
        }
    }

    /// <summary>
    /// Brings every database in line with the catalog: after this replica could not hear the
    /// change notifications (Postgres restarted, the connection dropped), it may have missed any.
    /// </summary>
    public async Task RefreshAllAsync(CancellationToken cancellationToken)
    {
        await _changing.WaitAsync(cancellationToken);
        try
        {
            var versions = await store.VersionsAsync(cancellationToken);
            var stale = versions.Where(v => !IsCurrent(v.Key, v.Value)).Select(v => v.Key);
            var gone = _modules.Keys.Where(database => !versions.ContainsKey(database));
            foreach (var database in stale.Concat(gone).ToList())
            {
                await RefreshUnlockedAsync(database, cancellationToken);
            }
            PruneCache();
        }
        finally
        {
            _changing.Release();
        }
    }

    private async Task RefreshUnlockedAsync(string database, CancellationToken cancellationToken)
    {
        var stored = await store.LoadAsync(database, cancellationToken);
        if (stored is null)
        {
            if (Remove(database))
            {
                LogRefreshed(database, "deleted");
            }
            return;
        }
        if (!IsCurrent(database, new ModuleVersion(stored.Sha256, stored.Owner, stored.Optimized)) && Load(stored))
        {
            LogRefreshed(database, $"sha256 {stored.Sha256}");
        }
    }

    /// <summary>
    /// Whether this server runs that version of the database. The owner counts too: a database
    /// deleted and claimed by someone else with the same bytes is another database; and so does
    /// the rewrite: the optimized one replaces the quick one.
    /// </summary>
    private bool IsCurrent(string database, ModuleVersion version) =>
        Find(database) is { } module && module.Sha256 == version.Sha256 && module.Owner?.ToString() == version.Owner && module.Optimized == version.Optimized;

    /// <summary>Frees every idle instance before the engine goes away.</summary>
    public void Dispose()
    {
        foreach (var module in _modules.Values)
        {
            module.Retire();
        }
        _modules.Clear();
        _changing.Dispose();
    }

    /// <summary>Drops compiled code that no module here uses any longer (a deleted or replaced one's), as the cache's limits say.</summary>
    private void PruneCache() => cache.Prune(_modules.Values.Select(module => module.CompiledEntry));

    /// <summary>Runs a module from the catalog; one that no longer loads is logged and skipped.</summary>
    private bool Load(StoredModule stored)
    {
        try
        {
            Swap(preparer.Load(stored.Name, stored.Prepared, stored.Optimized, stored.Sha256, stored.Owner is null ? null : Identity.Parse(stored.Owner), stored.UpdatedAt));
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
        if (old is not null && old.Owner != loaded.Owner)
        {
            // Another owner's database now (deleted and claimed again): the previous owner's log
            // lines are not theirs to read, and its SQL sessions log in with the old passwords.
            logs.Clear(loaded.Database);
            readers.Forget(loaded.Database);
        }
        Changed?.Invoke();
    }

    /// <summary>Drops a deleted database here: its module, its log lines, its SQL sessions and its UUID clock.</summary>
    private bool Remove(string database)
    {
        logs.Clear(database);
        readers.Forget(database);
        engine.UuidClocks.Forget(database);
        if (!_modules.TryRemove(database, out var old))
        {
            return false;
        }
        old.Retire();
        Changed?.Invoke();
        return true;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Database {Database} changed on another replica: {Change}")]
    private partial void LogRefreshed(string database, string change);

    [LoggerMessage(Level = LogLevel.Error, Message = "Database {Database} is in the catalog but does not load: {Reason}")]
    private partial void LogLoadFailed(string database, string reason);
}
