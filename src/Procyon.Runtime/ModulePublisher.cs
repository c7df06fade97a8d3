using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using Procyon.Storage;
using Procyon.Storage.Tables;

namespace Procyon.Runtime;

/// <summary>What a publish did.</summary>
/// <param name="Created">The database name was new.</param>
/// <param name="Module">The module now serving the database.</param>
/// <param name="Init">The init reducer's result, when the publish created the tables and the module has one.</param>
public sealed record PublishOutcome(bool Created, LoadedModule Module, CallResult? Init);

/// <summary>The init reducer failed, so the publish was rolled back (422).</summary>
public sealed class InitReducerFailedException(string database, string? error)
    : Exception($"the init reducer failed, so nothing was published and '{database}' is as it was: {error}");

/// <summary>
/// Publishes and deletes databases. Each is one Postgres transaction: the ownership check and the
/// catalog row, the schema's DDL (dropping old data with <c>clear</c>), the reader roles and the
/// init reducer commit together or not at all, and replicas hear of it only once it committed.
/// </summary>
public sealed partial class ModulePublisher(
    ModulePreparer preparer,
    PrepareLimiter prepareLimiter,
    ModuleStore store,
    DatabaseSchemas schemas,
    ModuleRegistry registry,
    ModuleOptimizer optimizer,
    CallDispatcher dispatcher,
    NpgsqlDataSource dataSource,
    IOptions<RuntimeOptions> options,
    ILogger<ModulePublisher> logger)
{
    /// <summary>
    /// Publishes or replaces a module and creates its new tables. Throws <see cref="NotOwnerException"/>,
    /// <see cref="ModuleRejectedException"/>, <see cref="SchemaConflictException"/> (changed or removed
    /// tables without <paramref name="clear"/>), <see cref="InitReducerFailedException"/> or
    /// <see cref="OverloadedException"/> (too many publishes preparing); then nothing changed and
    /// the previous module keeps serving. Calls asleep in Postgres go on waking on the code they
    /// went to sleep in, unless <paramref name="cancelSleeping"/> or <paramref name="clear"/> (their
    /// data is gone) cancels them.
    /// </summary>
    public async Task<PublishOutcome> PublishAsync(string database, byte[] wasm, Identity owner, bool clear, bool cancelSleeping, CancellationToken cancellationToken)
    {
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        var committed = false;
        try
        {
            var outcome = await PublishNowAsync(database, wasm, owner, clear, cancelSleeping, cancellationToken);
            committed = true;
            return outcome;
        }
        finally
        {
            ProcyonTelemetry.Published(System.Diagnostics.Stopwatch.GetElapsedTime(started), committed);
        }
    }

    private async Task<PublishOutcome> PublishNowAsync(string database, byte[] wasm, Identity owner, bool clear, bool cancelSleeping, CancellationToken cancellationToken)
    {
        // Refuse other owners before the expensive rewrite; the transaction below decides for good.
        if (!await store.IsClaimableByAsync(database, owner.ToString(), cancellationToken))
        {
            throw new NotOwnerException(database);
        }
        var sha256 = Convert.ToHexStringLower(SHA256.HashData(wasm));
        var rewritten = await store.FindRewrittenAsync(sha256, wasm, cancellationToken);
        var optimized = rewritten?.Optimized ?? !options.Value.OptimizeAfterPublish;
        byte[] prepared;
        LoadedModule loaded;
        using (await prepareLimiter.WaitTurnAsync(cancellationToken))
        {
            prepared = await preparer.PrepareAsync(wasm, rewritten?.Prepared, optimized, cancellationToken);
            loaded = preparer.Load(database, prepared, optimized, sha256, owner, DateTimeOffset.UtcNow);
        }
        try
        {
            await using var transaction = await DatabaseTransaction.BeginCatalogAsync(dataSource, cancellationToken);
            var created = await store.SaveAsync(transaction, new StoredModule(database, wasm, prepared, optimized, sha256, loaded.UpdatedAt, owner.ToString()), owner.ToString(), options.Value.MaxDatabasesPerIdentity, cancellationToken);
            var tablesCreated = await schemas.EnsureAsync(transaction, database, loaded.Tables.Values.ToList(), loaded.Description.Typespace, clear, options.Value.MigrationLockTimeout, cancellationToken);
            var init = tablesCreated ? await RunInitAsync(loaded, owner, transaction, cancellationToken) : null;
            if (clear || cancelSleeping)
            {
                // Last, just before the commit: it locks those calls' rows, which servers renew and finish.
                await DurableCallStore.CancelSleepingAsync(transaction, database, nameof(CallFailure.CancelledByRequest), RepublishedError, cancellationToken);
            }
            await ModuleStore.NotifyChangedAsync(transaction, database, cancellationToken);
            await registry.CommitAsync(transaction, database, loaded);
            if (init is not null)
            {
                dispatcher.Announce(init);
            }
            if (!optimized)
            {
                optimizer.Enqueue(database);
            }
            LogPublished(database, sha256, loaded.Description.Functions.Count);
            return new PublishOutcome(created, loaded, init);
        }
        catch
        {
            loaded.Retire();
            throw;
        }
    }

    /// <summary>Deletes a database, its module and its tables; false when there is none. Throws <see cref="NotOwnerException"/>.</summary>
    public async Task<bool> DeleteAsync(string database, Identity caller, CancellationToken cancellationToken)
    {
        await using var transaction = await DatabaseTransaction.BeginCatalogAsync(dataSource, cancellationToken);
        if (!await store.DeleteAsync(transaction, database, caller.ToString(), cancellationToken))
        {
            return false;
        }
        await schemas.DropAsync(transaction, database, cancellationToken);
        await DurableCallStore.DropAsync(transaction, database, cancellationToken);
        await ModuleStore.NotifyChangedAsync(transaction, database, cancellationToken);
        await registry.CommitAsync(transaction, database, replacement: null);
        LogDeleted(database);
        return true;
    }

    /// <summary>The error of the sleeping calls a publish cancelled.</summary>
    public const string RepublishedError = "the call was cancelled: its database was republished with ?cancelSleeping=true or ?clear=true";

    private async Task<CallResult?> RunInitAsync(LoadedModule module, Identity owner, DatabaseTransaction transaction, CancellationToken cancellationToken)
    {
        if (module.Description.Functions.FirstOrDefault(f => f.Kind == FunctionKind.InitReducer) is not { } init)
        {
            return null;
        }
        var result = await dispatcher.RunInitAsync(module, init, owner, transaction, cancellationToken);
        return result.Failure == CallFailure.None ? result : throw new InitReducerFailedException(module.Database, result.Error);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Published database {Database} (wasm sha256 {Sha256}, {Functions} functions)")]
    private partial void LogPublished(string database, string sha256, int functions);

    [LoggerMessage(Level = LogLevel.Information, Message = "Deleted database {Database}")]
    private partial void LogDeleted(string database);
}
